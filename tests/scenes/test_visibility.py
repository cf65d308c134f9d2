import numpy as np

from vlm3r.scenes.visibility import visible_from_mask, visible_from_projection


def test_mask_visibility_boxes_and_counts():
    mask = np.zeros((10, 20), dtype=np.int64)
    mask[2:5, 3:9] = 5  # instance 4
    mask[7, 15] = 8  # instance 7, one pixel
    mask[0, 0] = 3  # instance 2, not a benchmark object
    vis = visible_from_mask(mask, instance_ids={4, 7, 9}, min_pixels=1)
    assert [(v.instance_id, v.bbox_2d, v.pixel_count) for v in vis] == [(4, [3, 2, 8, 4], 18), (7, [15, 7, 15, 7], 1)]
    assert [v.instance_id for v in visible_from_mask(mask, {4, 7}, min_pixels=2)] == [4]


def test_projection_visibility_respects_occlusion():
    k = np.array([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]])
    pose = np.eye(4)  # camera at origin looking along +z (OpenCV), world = camera here
    # Instance 0: a square plane at z=2 in front; instance 1: a larger square at z=4 behind it.
    g = np.linspace(-0.2, 0.2, 41)
    front = np.array([[x, y, 2.0] for x in g for y in g])
    g2 = np.linspace(-1.0, 1.0, 101)
    back = np.array([[x, y, 4.0] for x in g2 for y in g2])
    pts = np.vstack([front, back])
    inst = np.r_[np.zeros(len(front), int), np.ones(len(back), int)]
    depth = np.full((48, 64), 4.0)
    depth[19:30, 27:38] = 2.0  # what a renderer would see: the front square covers the centre
    vis = {v.instance_id: v for v in visible_from_projection(pts, inst, pose, k, depth)}
    assert set(vis) == {0, 1}
    assert vis[0].bbox_2d == [27, 19, 37, 29]
    # The back square is visible around the front one but never inside the occluded window.
    assert vis[1].pixel_count < (vis[1].bbox_2d[2] - vis[1].bbox_2d[0] + 1) * (vis[1].bbox_2d[3] - vis[1].bbox_2d[1] + 1)
    occluded_only = np.full((48, 64), 2.0)
    assert [v.instance_id for v in visible_from_projection(back, np.ones(len(back), int), pose, k, occluded_only)] == []
