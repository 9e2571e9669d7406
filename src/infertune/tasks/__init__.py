"""Tasks: what a model's outputs mean. A task owns its data formats, its metric and the
decoding between the timed network and that metric, so the rest of infertune (load,
passes, runtimes, search) stays the same for a classifier and a detector.

`detection/` — YOLO-family detectors: head descriptions, decoding and NMS as Darknet does
them, letterbox preprocessing, COCO / YOLO-txt / Pascal VOC data, COCO mAP.
"""
