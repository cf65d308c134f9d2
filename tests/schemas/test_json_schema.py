import json

import jsonschema
from typer.testing import CliRunner

from vlm3r.cli import data_app
from vlm3r.schemas.scene import ObjectInstance, OrientedBox, SceneMetadata


def test_schema_command_writes_schemas_that_validate_instances(tmp_path):
    result = CliRunner().invoke(data_app, ["schema", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["frame_metadata.schema.json", "qa_record.schema.json", "scene_metadata.schema.json"]
    schema = json.loads((tmp_path / "scene_metadata.schema.json").read_text())
    box = OrientedBox.from_arrays([0, 0, 0.5], [1, 1, 1], [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    scene = SceneMetadata(
        scene_id="s", dataset="d", room_size=10.0, room_center=[0, 0, 1], object_counts={"chair": 1},
        objects=[ObjectInstance(instance_id=3, category="chair", raw_label="chair", box=box)],
    )
    jsonschema.validate(json.loads(scene.model_dump_json()), schema)
    bad = json.loads(scene.model_dump_json())
    bad["objects"][0]["box"]["centroid"] = [0, 0]
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("a 2-element centroid must not validate")
