"""`infertune eval` on the trained ref-detector gives the same mAP whichever format holds the
same boxes: 40 digits-det:val scenes written here as a YOLO folder (the set's own files), a
COCO JSON and a Pascal VOC folder. The COCO and VOC files are produced in this test from the
rendered scenes (an independent writer, not the set's), so the three readers and the class
mapping are checked on real detections of a trained model. Tolerance: 1e-9 (same images,
same network outputs, same matching; only the reader differs).
"""
from __future__ import annotations

import json
import shutil

import pytest

from infertune.cli import main
from infertune.tasks.detection import data_digits

N = 40


def run_json(capsys, *argv):
    code = main([*map(str, argv), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def three_formats(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    source = data_digits.materialize("val")
    scenes = [data_digits.render_detection_scene("val", i, data_digits.DATA_SEED)[1]
              for i in range(N)]
    yolo, voc = root / "yolo", root / "voc"
    for sub in (yolo / "images", yolo / "labels", voc / "JPEGImages", voc / "Annotations",
                root / "coco" / "images"):
        sub.mkdir(parents=True)
    shutil.copy(source / "classes.txt", yolo / "classes.txt")
    images, annotations = [], []
    for i, scene in enumerate(scenes):
        name = f"{i:05d}"
        for folder in (yolo / "images", voc / "JPEGImages", root / "coco" / "images"):
            shutil.copy(source / "images" / f"{name}.png", folder / f"{name}.png")
        shutil.copy(source / "labels" / f"{name}.txt", yolo / "labels" / f"{name}.txt")
        images.append({"id": i + 1, "file_name": f"{name}.png", "width": 128, "height": 128})
        objects = []
        for (x1, y1, x2, y2), cls in zip(scene.boxes.tolist(), scene.classes.tolist()):
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                "category_id": int(cls) + 1, "iscrowd": 0,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
            # VOC: 1-based inclusive pixel indices (x1 is the first ink column, x2 − 1 the last)
            objects.append(f"<object><name>{cls}</name><difficult>0</difficult><bndbox>"
                           f"<xmin>{int(x1) + 1}</xmin><ymin>{int(y1) + 1}</ymin>"
                           f"<xmax>{int(x2)}</xmax><ymax>{int(y2)}</ymax></bndbox></object>")
        (voc / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.png</filename><size><width>128</width>"
            f"<height>128</height><depth>3</depth></size>{''.join(objects)}</annotation>")
    (root / "coco" / "val.json").write_text(json.dumps({
        "images": images, "annotations": annotations,
        "categories": [{"id": k + 1, "name": str(k)} for k in range(10)]}))
    return {"yolo": yolo, "coco": root / "coco" / "val.json", "voc": voc}


def test_the_same_boxes_in_three_formats_give_the_same_map(capsys, three_formats):
    got = {fmt: run_json(capsys, "eval", "ref-detector", "--data", path)["accuracy"]
           for fmt, path in three_formats.items()}
    for fmt, acc in got.items():
        assert acc["images"] == N, fmt
        assert acc["ground_truth"] == got["yolo"]["ground_truth"], fmt
        for key in ("map", "ap50", "ap75", "precision", "recall"):
            assert acc[key] == pytest.approx(got["yolo"][key], abs=1e-9), (fmt, key)
    assert got["yolo"]["ap50"] > 0.5  # a trained detector on its own val scenes
