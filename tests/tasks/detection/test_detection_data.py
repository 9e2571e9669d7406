"""COCO JSON, YOLO txt and Pascal VOC readers: boxes converted to xyxy pixels (expected values
worked out here from each format's definition), class names, crowd/difficult flags, and bad
or hostile files refused with one line naming the file (and line)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from infertune.errors import DataError
from infertune.tasks.detection.data import read_detection_data


def image(path, w: int, h: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (120, 30, 200)).save(path)
    return path


# ----------------------------------------------------------------------------- COCO

def coco_doc(**overrides):
    doc = {"images": [{"id": 7, "file_name": "a.png", "width": 60, "height": 40},
                      {"id": 9, "file_name": "b.png"}],
           "categories": [{"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}],
           "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [10, 5, 20, 10]},
                           {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 60, 40],
                            "iscrowd": 1}]}
    doc.update(overrides)
    return doc


@pytest.fixture
def coco(tmp_path):
    image(tmp_path / "images" / "a.png", 60, 40)
    image(tmp_path / "images" / "b.png", 30, 50)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(coco_doc()))
    return path


def test_coco(coco):
    ds = read_detection_data(coco)
    assert ds.format == "coco" and ds.names == ("cat", "dog")  # ordered by category id
    a, b = ds.samples
    assert a.image_id == 7 and a.image_hw == (40, 60) and b.image_hw == (50, 30)  # b: header
    np.testing.assert_array_equal(a.boxes, [[10, 5, 30, 15], [0, 0, 60, 40]])
    assert a.classes.tolist() == [1, 0] and a.crowd.tolist() == [False, True]
    assert len(b.boxes) == 0


@pytest.mark.parametrize("change,message", [
    ({"annotations": [{"id": 5, "image_id": 7, "category_id": 3, "bbox": [10, 5, -2, 10]}]},
     "annotation 5: box .* has no area"),
    ({"annotations": [{"id": 6, "image_id": 7, "category_id": 4, "bbox": [1, 1, 2, 2]}]},
     "annotation 6: category_id 4"),
    ({"annotations": [{"id": 8, "image_id": 7, "category_id": 3, "bbox": [50, 30, 20, 20]}]},
     "annotation 8: box .* outside the 60×40 image"),
    ({"images": [{"id": 1, "file_name": "../../etc/passwd"}]}, "leaves the data folder"),
    ({"images": [{"id": 1, "file_name": "nope.png"}]}, "nope.png not found"),
])
def test_coco_errors_name_the_file(coco, change, message):
    coco.write_text(json.dumps(coco_doc(**change)))
    with pytest.raises(DataError, match=message) as info:
        read_detection_data(coco)
    assert str(info.value).startswith(str(coco)) and "\n" not in str(info.value)


def test_coco_bad_json_gives_the_line(coco):
    coco.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(DataError, match="not valid JSON.*line 2"):
        read_detection_data(coco)


# ----------------------------------------------------------------------------- YOLO

@pytest.fixture
def yolo(tmp_path):
    image(tmp_path / "images" / "a.png", 100, 50)
    image(tmp_path / "images" / "b.png", 20, 20)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n\n0 0.1 0.2 0.2 0.4\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    return tmp_path


def test_yolo(yolo):
    ds = read_detection_data(yolo)
    assert ds.format == "yolo" and ds.names == ("cat", "dog")
    a, b = ds.samples
    # cx .5·100 ± .2·100/2, cy .5·50 ± .4·50/2; the second: cx 10 ± 10 → clipped at 0
    np.testing.assert_allclose(a.boxes, [[40, 15, 60, 35], [0, 0, 20, 20]])
    assert a.classes.tolist() == [1, 0] and len(b.boxes) == 0  # no label file: background


def test_yolo_names_default_to_numbers(yolo):
    (yolo / "classes.txt").unlink()
    assert read_detection_data(yolo).names == ("0", "1")


@pytest.mark.parametrize("line,message", [
    ("1 0.5 0.5 0.2", "expected 'class cx cy w h', got 4 fields"),
    ("1 0.5 0.5 x 0.2", "not numbers"),
    ("2 0.5 0.5 0.2 0.2", "class 2 is not one of the 2 classes"),
    ("0 0.5 0.5 1.5 0.2", "normalised to 0..1"),
    ("0 0.5 0.5 0 0.2", "has no area"),
])
def test_yolo_malformed_line_names_file_and_line(yolo, line, message):
    (yolo / "labels" / "a.txt").write_text(f"0 0.5 0.5 0.2 0.2\n{line}\n")
    with pytest.raises(DataError, match=message) as info:
        read_detection_data(yolo)
    assert str(info.value).startswith(f"{yolo / 'labels' / 'a.txt'}:2: ")


# ----------------------------------------------------------------------------- VOC

VOC_XML = """<annotation>
  <filename>x.jpg</filename>
  <size><width>80</width><height>60</height><depth>3</depth></size>
  <object>
    <name>dog</name><difficult>0</difficult>
    <bndbox><xmin>11</xmin><ymin>21</ymin><xmax>40</xmax><ymax>50</ymax></bndbox>
  </object>
  <object>
    <name>person</name><difficult>1</difficult>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>{xmax}</xmax><ymax>60</ymax></bndbox>
  </object>
</annotation>
"""


@pytest.fixture
def voc(tmp_path):
    image(tmp_path / "JPEGImages" / "x.jpg", 80, 60)
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "x.xml").write_text(VOC_XML.format(xmax=80))
    return tmp_path


def test_voc(voc):
    ds = read_detection_data(voc)
    assert ds.format == "voc" and ds.names[11] == "dog" and len(ds.names) == 20  # VOC order
    (s,) = ds.samples
    # 1-based inclusive pixel indices → continuous: (xmin − 1, ymin − 1, xmax, ymax)
    np.testing.assert_array_equal(s.boxes, [[10, 20, 40, 50], [0, 0, 80, 60]])
    assert s.classes.tolist() == [11, 14] and s.crowd.tolist() == [False, True]


def test_voc_malformed_box_names_file_and_line(voc):
    path = voc / "Annotations" / "x.xml"
    path.write_text(VOC_XML.format(xmax=0))
    with pytest.raises(DataError, match=r"x\.xml:8: box .* has no area"):
        read_detection_data(voc)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<annotation><filename>&lol4;</filename></annotation>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>&xxe;</filename></annotation>
"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE annotation SYSTEM "http://127.0.0.1:9/voc.dtd">
<annotation><filename>x.jpg</filename></annotation>
"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD],
                         ids=["billion-laughs", "external-entity", "external-dtd"])
def test_voc_hostile_xml_is_refused_in_one_line(voc, text):
    path = voc / "Annotations" / "x.xml"
    path.write_text(text)
    with pytest.raises(DataError, match="refused") as info:
        read_detection_data(voc)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_voc_broken_xml_gives_the_line(voc):
    (voc / "Annotations" / "x.xml").write_text("<annotation>\n<size>\n</annotation>\n")
    with pytest.raises(DataError, match=r"x\.xml:3: not well-formed"):
        read_detection_data(voc)


def test_unknown_layout(tmp_path):
    with pytest.raises(DataError, match="not a detection data set"):
        read_detection_data(tmp_path)
    with pytest.raises(DataError, match="no such file"):
        read_detection_data(tmp_path / "none")
