"""What each raw layout's adapter must report for a synthetic scene: the objects its source's
vocabulary keeps, under the instance id and the category that source gives them. Tests compare
every adapter against this, so that a layout writer and its adapter cannot agree on a wrong idea."""

from __future__ import annotations

from dataclasses import dataclass

from vlm3r.scenes.categories import source_category

from .arkitscenes_layout import arkit_class
from .scannetpp_layout import scannetpp_label
from .synthetic import SyntheticObject, SyntheticScene

LAYOUTS = ("scannet", "scannetpp", "arkitscenes")


@dataclass(frozen=True)
class ExpectedObject:
    """One object as a layout's adapter must report it."""

    instance_id: int
    category: str
    object: SyntheticObject


def expected_objects(scene: SyntheticScene, layout: str) -> list[ExpectedObject]:
    """The objects of ``scene`` that the ``layout`` source keeps, in instance-id order.

    ScanNet: the object's raw label through ScanNet's vocabulary, id = objectId. ScanNet++: the label
    the writer gives it (:func:`scannetpp_label`) through ScanNet++'s vocabulary, id = objectId.
    ARKitScenes: only objects annotated with one of its classes (:func:`arkit_class`), id = the
    index in the annotation's ``data[]``, category through ARKitScenes' vocabulary.
    """
    out: list[ExpectedObject] = []
    if layout == "arkitscenes":
        annotated = [(o, arkit_class(o.category)) for o in scene.objects if arkit_class(o.category)]
        for k, (o, label) in enumerate(annotated):
            category = source_category("arkitscenes", label)
            if category is not None:
                out.append(ExpectedObject(k, category, o))
        return out
    for o in scene.objects:
        label = scannetpp_label(o.raw_label) if layout == "scannetpp" else o.raw_label
        category = source_category(layout, label)
        if category is not None:
            out.append(ExpectedObject(o.instance_id, category, o))
    return out
