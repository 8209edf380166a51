"""Crops, boxes, BlazeFace anchors/NMS, pose and attribute post-processing: pure numpy, no models."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from emollama.faces.align import CropConfig, box_from_points, crop_face, landmarks_to_crop, square_box, to_rgb_array
from emollama.faces.attributes import AGE_WEIGHTS, age_group_probs, attributes_from_probs
from emollama.faces.blazeface import SPECS, make_anchors, weighted_nms
from emollama.faces.contract import AGE_GROUPS
from emollama.faces.detect import pose_from_matrix
from emollama.faces.types import FaceBox, FaceResult


def test_to_rgb_converts_gray_rgba_and_pil():
    g = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_rgb_array(g).shape == (3, 4, 3) and (to_rgb_array(g)[..., 2] == g).all()
    assert to_rgb_array(np.zeros((3, 4, 4), np.uint8)).shape == (3, 4, 3)
    assert to_rgb_array(Image.new("L", (5, 2))).shape == (2, 5, 3)
    assert to_rgb_array(Image.new("RGBA", (5, 2))).flags["C_CONTIGUOUS"]
    with pytest.raises(ValueError, match="uint8"):
        to_rgb_array(np.zeros((3, 4), np.uint16))


def test_square_crop_with_margin_and_padding():
    rgb = np.full((100, 200, 3), 255, np.uint8)
    box = FaceBox(150, 10, 190, 90)  # 40 x 80 near the right edge
    crop, region = crop_face(rgb, box, CropConfig(margin=0.25, size=32))
    assert crop.shape == (32, 32, 3) and crop.dtype == np.uint8
    assert region.width == pytest.approx(120) and region.height == pytest.approx(120)  # 80 * (1 + 2 * 0.25)
    assert region.center == pytest.approx(box.center)
    assert crop[:, -1].max() == 0 and crop[16, 8].min() == 255  # zero padding outside the image
    with pytest.raises(ValueError):
        CropConfig(margin=-1)


def test_landmarks_normalised_to_crop():
    region = square_box(FaceBox(10, 10, 30, 30), 0.0)
    pts = np.array([[10, 10, 0], [30, 30, 0], [20, 20, 5]], np.float32)
    np.testing.assert_allclose(landmarks_to_crop(pts, region), [[0, 0], [1, 1], [0.5, 0.5]])
    assert box_from_points(pts).xyxy == (10, 10, 30, 30)


def test_facebox_geometry():
    a, b = FaceBox(0, 0, 10, 10), FaceBox(5, 0, 15, 10)
    assert a.iou(b) == pytest.approx(1 / 3) and a.iou(a) == 1 and a.contains(5, 5) and not a.contains(11, 5)


def test_blazeface_anchor_counts_match_the_models():
    assert len(make_anchors(SPECS["full"])) == 2304
    assert len(make_anchors(SPECS["short"])) == 896
    anc = make_anchors(SPECS["short"])
    assert anc.min() > 0 and anc.max() < 1


def test_weighted_nms_merges_clusters():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    out = weighted_nms(boxes, np.array([0.9, 0.9, 0.6], np.float32), 0.3)
    assert len(out) == 2 and out[0][1] == pytest.approx(0.9)
    np.testing.assert_allclose(out[0][0], [0.5, 0, 10.5, 10])


def test_pose_from_matrix_round_trip():
    yaw, pitch, roll = 0.4, -0.2, 0.1
    rz = np.array([[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
    ry = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    m = np.eye(4)
    m[:3, :3] = rz @ ry @ rx
    assert pose_from_matrix(m) == pytest.approx((yaw, pitch, roll))
    assert pose_from_matrix(np.eye(4)) == pytest.approx((0, 0, 0))


def test_attribute_postprocessing():
    p = np.zeros(81)
    p[33] = 1.0  # class 33 = 33 years
    a = attributes_from_probs(p, np.array([0.2, 0.8]))
    assert a.age == pytest.approx(33) and a.age_group == "20-39" and a.age_confidence == pytest.approx(1)
    assert (a.gender, a.gender_confidence) == ("male", pytest.approx(0.8))
    assert a.race is None  # race is off by default
    agr = a.to_agr()
    assert agr.age_group == "20-39" and agr.gender == "male"
    g = age_group_probs(np.full(81, 1 / 81))
    assert g.shape == (len(AGE_GROUPS),) and g.sum() == pytest.approx(1)
    assert g[0] == pytest.approx(4 / 81) and len(AGE_WEIGHTS) == 81  # 0.25, 1, 2, 3 years -> "0-3"


def test_face_result_is_a_tracker_detection_and_serialises():
    r = FaceResult(box=FaceBox(1, 2, 3, 4, 0.9, "x"), probs={"happiness": 1.0}, label="happiness")
    assert r.score == 0.9 and r.box.xyxy == (1, 2, 3, 4) and not r.has_mesh
    d = r.to_dict()
    assert d["box"] == [1, 2, 3, 4] and d["label"] == "happiness" and d["age"] is None
