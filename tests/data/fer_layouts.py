"""Tiny datasets written in each owner's official layout (DATASETS.md), with generated media.

Every writer takes the annotation lines to write (so tests can inject malformed variants) and a set of media to
leave out (listed-but-missing). Media are 8x8 JPEG/PNG files, or frame folders with one JPEG for clips.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def image(path: Path, color: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (color, 255 - color, 60)).save(path)
    return path


def frames(folder: Path, n: int = 2) -> Path:
    for i in range(n):
        image(folder / f"{i:03d}.jpg", 40 * i)
    return folder


def text(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


RAFDB_LINES = ["train_00001.jpg 5", "train_00002.jpg 1", "train_00003.jpg 4", "test_0001.jpg 7", "test_0002.jpg 6"]


def rafdb(root: Path, lines: list[str] = RAFDB_LINES, missing: frozenset[str] = frozenset(), attrs: bool = True):
    text(root / "EmoLabel" / "list_patition_label.txt", lines)
    (root / "Image" / "aligned").mkdir(parents=True, exist_ok=True)
    for i, line in enumerate(lines):
        name = line.split()[0]
        if name in missing or not name.endswith(".jpg"):
            continue
        image(root / "Image" / "original" / name, 20 * i)
        image(root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg"), 20 * i)
        if attrs:  # 5 landmarks, gender, race, age group
            text(root / "Annotation" / "manual" / name.replace(".jpg", "_manu_attri.txt"),
                 [f"{10 + j}.5 {20 + j}.25" for j in range(5)] + [str(i % 3), str(i % 3), str(i % 5)])
    return root


AFFECTNET_HEADER = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,"
                    "arousal")


def affectnet_row(rel: str, code: int) -> str:
    return f'{rel},10,10,100,100,"1.0;2.0;3.0;4.0",{code},0.25,-0.5'


AFFECTNET_TRAIN = [affectnet_row(f"{i}/img{i}.jpg", c) for i, c in enumerate([0, 1, 6, 7, 8, 10])]


def affectnet(root: Path, train: list[str] = AFFECTNET_TRAIN, val: list[str] | None = None,
              missing: frozenset[str] = frozenset()):
    val = val if val is not None else [affectnet_row("v/a.jpg", 3), affectnet_row("v/b.jpg", 7)]
    for name, rows in (("training.csv", train), ("validation.csv", val)):
        text(root / "Manually_Annotated_file_lists" / name, [AFFECTNET_HEADER, *rows])
        for row in rows:
            rel = row.split(",")[0]
            if rel not in missing and rel.endswith(".jpg"):
                image(root / "Manually_Annotated_Images" / rel)
    return root


def affectnet_kaggle(root: Path, train: list[str] | None = None):
    train = train if train is not None else ["train/a.jpg,1", "train/b.jpg,8", "train/c.jpg,2"]
    text(root / "train-sample-affectnet.csv", ["image,emotion", *train])
    text(root / "valid-sample-affectnet.csv", ["image,emotion", "valid/a.jpg,4"])
    for row in [*train, "valid/a.jpg,4"]:
        image(root / row.split(",")[0])
    return root


# (image, votes over neutral..contempt, unknown, NF) -> expected majority-mode outcome in the comment
FERPLUS_ROWS = [
    ("fer0000000.png", "6,0,1,1,0,0,0,0,2,0"),  # neutral: 1-votes dropped, 6 of 8 > half
    ("fer0000001.png", "0,10,0,0,0,0,0,0,0,0"),  # happiness
    ("fer0000002.png", "4,0,0,4,2,0,0,0,0,0"),  # tie 4/4 -> no clear majority, excluded
    ("fer0000003.png", "0,0,0,0,0,0,0,0,1,9"),  # NF majority, excluded
    ("fer0000004.png", "0,0,0,0,0,0,0,7,3,0"),  # contempt
]


def ferplus(root: Path, rows: list[tuple[str, str]] = FERPLUS_ROWS, layout: str = "label_csv",
            missing: frozenset[str] = frozenset()):
    for name, _ in rows:
        if name and name not in missing:
            image(root / "FER2013Train" / name)
    (root / "FER2013Valid").mkdir(parents=True, exist_ok=True)
    if layout == "label_csv":  # no header: name, face box, 10 votes
        text(root / "FER2013Train" / "label.csv", [f'{n},"(0, 0, 48, 48)",{v}' for n, v in rows])
        text(root / "FER2013Valid" / "label.csv", [])
    else:
        header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
        text(root / "fer2013new.csv", [header, *(f"Training,{n},{v}" for n, v in rows),
                                       "PublicTest,,0,0,0,0,0,0,0,0,0,10"])
    return root


DFEW_TRAIN = ["video_name,label", "1,1", "2,3", "3,7", "10,4"]
DFEW_TEST = ["video_name,label", "4,2"]


def dfew(root: Path, train: list[str] = DFEW_TRAIN, test: list[str] = DFEW_TEST, missing: frozenset[str] = frozenset()):
    base = root / "EmoLabel_DataSplit"
    text(base / "train(single-labeled)" / "set_1.csv", train)
    text(base / "test(single-labeled)" / "set_1.csv", test)
    (root / "Clip" / "clip_224x224").mkdir(parents=True, exist_ok=True)
    for row in [*train[1:], *test[1:]]:
        vid = row.split(",")[0]
        if vid.isdigit() and f"{int(vid):05d}" not in missing:
            frames(root / "Clip" / "clip_224x224" / f"{int(vid):05d}")
    return root


FERV39K_TRAIN = ["Crime/Angry/0063 Angry", "Daily/Happy/0001 Happy", "Daily/Sad/0002 Sad"]


def ferv39k(root: Path, train: list[str] = FERV39K_TRAIN, test: list[str] | None = None,
            missing: frozenset[str] = frozenset()):
    test = test if test is not None else ["Crime/Fear/0100 Fear"]
    text(root / "4_setups" / "All_scenes" / "train_All.csv", train)
    text(root / "4_setups" / "All_scenes" / "test_All.csv", test)
    (root / "2_ClipsforFaceCrop").mkdir(parents=True, exist_ok=True)
    for line in [*train, *test]:
        rel = line.split()[0]
        if rel not in missing and rel.count("/") == 2:
            frames(root / "2_ClipsforFaceCrop" / rel)
    return root


MAFW_TRAIN = ["00001.mp4 anger", "00002.mp4 helplessness", "00003.mp4 disappointment"]


def mafw(root: Path, train: list[str] = MAFW_TRAIN, test: list[str] | None = None,
         missing: frozenset[str] = frozenset()):
    test = test if test is not None else ["00004.mp4 contempt"]
    text(root / "split" / "single" / "no_caption" / "set_1" / "train.txt", train)
    text(root / "split" / "single" / "no_caption" / "set_1" / "test.txt", test)
    (root / "data" / "faces").mkdir(parents=True, exist_ok=True)
    for line in [*train, *test]:
        stem = line.split()[0].split(".")[0]
        if stem not in missing:
            frames(root / "data" / "faces" / stem)
    return root
