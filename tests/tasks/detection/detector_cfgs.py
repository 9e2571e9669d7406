"""Darknet detector cfgs written from the published architectures (YOLOv3, YOLOv3-tiny,
YOLOv4-tiny): layer lists generated here, with the anchors, masks and AlexeyAB keys of the
official cfgs. Random weights only; the real yolov3-tiny cfg comes with its weights."""
from __future__ import annotations

COCO_ANCHORS_V3 = "10,13, 16,30, 33,23, 30,61, 62,45, 59,119, 116,90, 156,198, 373,326"
TINY_ANCHORS = "10,14, 23,27, 37,58, 81,82, 135,169, 344,319"


def conv(filters: int, size: int, stride: int = 1, head: bool = False) -> str:
    bn, act = ("", "linear") if head else ("batch_normalize=1\n", "leaky")
    return (f"[convolutional]\n{bn}filters={filters}\nsize={size}\nstride={stride}\npad=1\n"
            f"activation={act}")


def yolo(mask: str, anchors: str, num: int, extra: str = "") -> str:
    return f"[yolo]\nmask={mask}\nanchors={anchors}\nclasses=80\nnum={num}\n{extra}"


def net(size: int, layers: list[str]) -> str:
    return "\n".join([f"[net]\nwidth={size}\nheight={size}\nchannels=3", *layers]) + "\n"


def yolov3(size: int = 416) -> str:
    shortcut = "[shortcut]\nfrom=-3\nactivation=linear"
    layers = [conv(32, 3), conv(64, 3, 2), conv(32, 1), conv(64, 3), shortcut]
    for filters, repeats in ((128, 2), (256, 8), (512, 8), (1024, 4)):
        layers += [conv(filters, 3, 2)] + [conv(filters // 2, 1), conv(filters, 3), shortcut] * repeats

    def head(f: int, mask: str) -> list[str]:
        return [conv(f, 1), conv(2 * f, 3)] * 3 + [conv(255, 1, head=True),
                                                   yolo(mask, COCO_ANCHORS_V3, 9)]

    layers += head(512, "6,7,8") + ["[route]\nlayers=-4", conv(256, 1), "[upsample]\nstride=2",
                                    "[route]\nlayers=-1,61"]
    layers += head(256, "3,4,5") + ["[route]\nlayers=-4", conv(128, 1), "[upsample]\nstride=2",
                                    "[route]\nlayers=-1,36"]
    layers += head(128, "0,1,2")
    return net(size, layers)


def yolov3_tiny(size: int = 416) -> str:
    pool = "[maxpool]\nsize=2\nstride={}"
    layers = []
    for filters in (16, 32, 64, 128, 256):
        layers += [conv(filters, 3), pool.format(2)]
    layers += [conv(512, 3), pool.format(1), conv(1024, 3), conv(256, 1), conv(512, 3),
               conv(255, 1, head=True), yolo("3,4,5", TINY_ANCHORS, 6), "[route]\nlayers=-4",
               conv(128, 1), "[upsample]\nstride=2", "[route]\nlayers=-1,8", conv(256, 3),
               conv(255, 1, head=True), yolo("0,1,2", TINY_ANCHORS, 6)]
    return net(size, layers)


def yolov4_tiny(size: int = 416) -> str:
    """CSP blocks with AlexeyAB's route groups, scale_x_y=1.05 and greedy DIoU NMS."""
    layers = [conv(32, 3, 2), conv(64, 3, 2)]
    for filters in (64, 128, 256):
        layers += [conv(filters, 3), "[route]\nlayers=-1\ngroups=2\ngroup_id=1",
                   conv(filters // 2, 3), conv(filters // 2, 3), "[route]\nlayers=-1,-2",
                   conv(filters, 1), "[route]\nlayers=-6,-1", "[maxpool]\nsize=2\nstride=2"]
    keys = "scale_x_y=1.05\nnms_kind=greedynms\nbeta_nms=0.6"
    layers += [conv(512, 3), conv(256, 1), conv(512, 3), conv(255, 1, head=True),
               yolo("3,4,5", TINY_ANCHORS, 6, keys), "[route]\nlayers=-4", conv(128, 1),
               "[upsample]\nstride=2", "[route]\nlayers=-1,23", conv(256, 3),
               conv(255, 1, head=True), yolo("1,2,3", TINY_ANCHORS, 6, keys)]
    return net(size, layers)


SMALL_ANCHORS = "6,8, 12,10, 20,24, 30,40, 50,44, 60,60"


def two_head_detector(size: int = 64, classes: int = 2) -> str:
    """A yolov3-tiny-shaped detector: two [yolo] heads (8×8 and 16×16 at 64×64)."""
    head = 3 * (5 + classes)

    def yolo(mask: str) -> str:
        return f"[yolo]\nmask={mask}\nanchors={SMALL_ANCHORS}\nclasses={classes}\nnum=6\n"

    pool = "[maxpool]\nsize=2\nstride=2"
    layers = [conv(8, 3), pool, conv(16, 3), pool, conv(32, 3), pool,
              conv(32, 3), conv(head, 1, head=True), yolo("3,4,5"),
              "[route]\nlayers=-3", conv(16, 1), "[upsample]\nstride=2",
              "[route]\nlayers=-1,4", conv(16, 3), conv(head, 1, head=True),
              yolo("0,1,2")]
    return net(size, layers)
