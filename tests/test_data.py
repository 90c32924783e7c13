"""Data preparation on real UTKFace chips from ../shared, plus files built to break it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tarfile
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agedetect.data import (
    CHIP_SIZE,
    REASONS,
    PrepareSettings,
    assign_splits,
    check_split,
    load_manifest,
    load_settings,
    prepare,
)
from agedetect.errors import DataError
from agedetect.labels import AgeGroups, LabelError, parse_utkface_name

from shared_data import CHIPS as UTKFACE
from shared_data import needs_chips as needs_utkface

#: The four names the UTKFace README lists as not following the pattern.
README_MALFORMED = {
    "24_0_1_20170116220224657 .jpg.chip.jpg": "accepted",  # stray space: labels intact
    "55_0_0_20170116232725357jpg.chip.jpg": "accepted",  # missing dot: labels intact
    "39_1_20170116174525125.jpg.chip.jpg": "malformed_name",  # a field missing: never guessed
    "61_1_20170109142408075.jpg.chip.jpg": "malformed_name",
}

#: One photo's faces; one name has an 18th datetime digit, the others do not.
PHOTO_WITH_18_DIGITS = (
    "28_1_2_201701161846515488.jpg.chip.jpg",
    "26_1_0_20170116184651548.jpg.chip.jpg",
    "26_1_2_20170116184651548.jpg.chip.jpg",
    "42_1_2_20170116184651548.jpg.chip.jpg",
)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name, expected",
    [
        ("26_1_2_20170116174525125.jpg.chip.jpg", (26, 1, 2, "20170116174525125", True, "")),
        ("1_0_0_20161219140623097.jpg.chip.jpg", (1, 0, 0, "20161219140623097", True, "")),
        ("116_1_4_20170120134639935.jpg.chip.jpg", (116, 1, 4, "20170120134639935", True, "")),
        ("0_1_3_20170110224238891.jpg", (0, 1, 3, "20170110224238891", False, "")),  # in-the-wild photo
        ("26_1_2_20170116174525125.JPG", (26, 1, 2, "20170116174525125", False, "")),
        (
            "24_0_1_20170116220224657 .jpg.chip.jpg",
            (24, 0, 1, "20170116220224657", True, "stray space in file name"),
        ),
        (
            "55_0_0_20170116232725357jpg.chip.jpg",
            (55, 0, 0, "20170116232725357", True, "missing dot in file name"),
        ),
        ("39_1_20170116174525125.jpg.chip.jpg", "malformed_name"),
        ("61_1_20170109142408075.jpg.chip.jpg", "malformed_name"),
        # Two more slips in the public release, not in the README: an 18-digit datetime.
        (
            "28_1_2_201701161846515488.jpg.chip.jpg",
            (28, 1, 2, "201701161846515488", True, "datetime has 18 digits, not 17"),
        ),
        (
            "38_0_1_201701162330572788.jpg.chip.jpg",
            (38, 0, 1, "201701162330572788", True, "datetime has 18 digits, not 17"),
        ),
        ("._26_1_2_20170116174525125.jpg.chip.jpg", "malformed_name"),  # macOS resource fork
        ("26_1_2.jpg.chip.jpg", "malformed_name"),
        ("a_1_2_20170116174525125.jpg.chip.jpg", "malformed_name"),
        ("26_1_2_20170116174525125.png", "malformed_name"),
        ("117_1_2_20170116174525125.jpg.chip.jpg", "age_out_of_range"),
        ("26_2_2_20170116174525125.jpg.chip.jpg", "bad_gender"),
        ("26_1_5_20170116174525125.jpg.chip.jpg", "bad_race"),
    ],
)
def test_parse_utkface_name(name, expected):
    if isinstance(expected, str):
        with pytest.raises(LabelError) as caught:
            parse_utkface_name(name)
        assert caught.value.reason == expected
        assert caught.value.reason in REASONS
        assert repr(name) in caught.value.detail
    else:
        label = parse_utkface_name(name)
        assert (label.age, label.gender, label.race, label.datetime, label.is_chip, label.note) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.7,0.15,0.15", (0.7, 0.15, 0.15)),
        ("0.8,0.2,0", (0.8, 0.2, 0.0)),
        ((0.5, 0.25, 0.25), (0.5, 0.25, 0.25)),
    ],
)
def test_check_split_accepts(text, expected):
    assert check_split(text) == expected


@pytest.mark.parametrize("text", ["0.7,0.3", "0.7,0.2,0.2", "0,0.5,0.5", "a,b,c", "1.2,-0.1,-0.1"])
def test_check_split_rejects(text):
    with pytest.raises(ValueError, match="split"):
        check_split(text)


# --------------------------------------------------------------------------- split


def test_assign_splits_is_deterministic_grouped_and_stratified():
    rng = np.random.default_rng(7)
    photos, strata = [], []
    for photo in range(3000):
        size = int(rng.choice([1, 1, 1, 1, 2, 3, 6]))
        stratum = int(rng.integers(0, 5))
        photos += [f"p{photo:05d}"] * size
        strata += [stratum] * size
    first = assign_splits(photos, strata, (0.7, 0.15, 0.15), seed=3)
    assert first == assign_splits(photos, strata, (0.7, 0.15, 0.15), seed=3)
    assert first != assign_splits(photos, strata, (0.7, 0.15, 0.15), seed=4)

    split_of_photo = defaultdict(set)
    for photo, split in zip(photos, first):
        split_of_photo[photo].add(split)
    assert all(len(splits) == 1 for splits in split_of_photo.values())

    for stratum in range(5):
        in_stratum = [split for split, s in zip(first, strata) if s == stratum]
        shares = Counter(in_stratum)
        for split, fraction in zip(("train", "val", "test"), (0.7, 0.15, 0.15)):
            # Within one photo (at most 6 rows) of the exact share.
            assert abs(shares[split] - fraction * len(in_stratum)) <= 6, (stratum, split, shares)


def test_assign_splits_moves_few_photos_when_one_is_removed():
    photos = [f"p{index:04d}" for index in range(2000)]
    strata = [index % 5 for index in range(2000)]
    before = dict(zip(photos, assign_splits(photos, strata, seed=0)))
    after = dict(zip(photos[1:], assign_splits(photos[1:], strata[1:], seed=0)))
    moved = sum(before[photo] != after[photo] for photo in after)
    assert moved <= 2  # at most the photos at the stratum's two boundaries


def test_assign_splits_keeps_a_photo_whose_faces_differ_in_group_together():
    splits = assign_splits(["a", "a", "a", "b"], [0, 4, 4, 0], seed=0)
    assert len(set(splits[:3])) == 1


# --------------------------------------------------------------------------- real chips


def _sample_chips(count: int) -> list[Path]:
    """A spread of real chips: every n-th name, plus every chip of a few multi-face photos."""
    names = sorted(os.listdir(UTKFACE))
    picked = set(names[:: max(1, len(names) // count)][:count])
    by_photo = defaultdict(list)
    for name in names:
        by_photo[name.split("_")[-1].split(".")[0]].append(name)
    groups = [members for members in by_photo.values() if len(members) >= 3][:6]
    picked.update(name for members in groups for name in members)
    return [UTKFACE / name for name in sorted(picked) if parse_ok(name)]


def parse_ok(name: str) -> bool:
    try:
        parse_utkface_name(name)
        return True
    except LabelError:
        return False


def _hash_tree(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(path.relative_to(root)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """~200 real chips, with one of each kind of trouble beside them."""
    if not UTKFACE.is_dir():
        pytest.skip(f"UTKFace chips not found at {UTKFACE}")
    root = tmp_path_factory.mktemp("source")
    chips = root / "UTKFace"
    (chips / "nested" / "deeper").mkdir(parents=True)
    sample = _sample_chips(200)
    for index, path in enumerate(sample):
        folder = chips / "nested" / "deeper" if index % 7 == 0 else chips  # searched recursively
        shutil.copy2(path, folder / path.name)
    some = sample[5].read_bytes()
    for name in PHOTO_WITH_18_DIGITS:
        if UTKFACE / name not in sample:
            shutil.copy2(UTKFACE / name, chips / name)
    for name in README_MALFORMED:
        shutil.copy2(UTKFACE / name, chips / name)
    (chips / "README.md").write_text("not an image\n")
    (chips / "3_0_0_20170101000000001.jpg.chip.jpg").write_bytes(b"")
    (chips / "3_0_0_20170101000000002.jpg.chip.jpg").write_bytes(some[: len(some) // 2])  # truncated
    (chips / "3_0_0_20170101000000003.jpg.chip.jpg").write_bytes(b"GIF89a garbage")
    (chips / "117_0_0_20170101000000004.jpg.chip.jpg").write_bytes(some)
    # Same bytes under another name, and the same pixels in another format, with the same
    # labels: duplicates of sample[5]. A copy of sample[6] with another age: a conflict.
    (chips / "zz_copies").mkdir()
    age, gender, race = sample[5].name.split("_")[:3]
    (chips / "zz_copies" / f"{age}_{gender}_{race}_20170101000000005.jpg.chip.jpg").write_bytes(some)
    Image.open(io.BytesIO(some)).save(
        chips / "zz_copies" / f"{age}_{gender}_{race}_20170101000000006.jpg.chip.jpg", "PNG"
    )
    label = parse_utkface_name(sample[6].name)
    conflict = f"{(label.age + 9) % 100}_{label.gender}_{label.race}_20170101000000010.jpg.chip.jpg"
    shutil.copy2(sample[6], chips / "zz_copies" / conflict)
    (chips / "3_0_0_20170101000000007.jpg.chip.jpg").symlink_to(root / "gone.jpg")  # dangling
    Image.new("RGB", (200, 150), (90, 90, 90)).save(chips / "3_0_0_20170101000000008.jpg.chip.jpg")
    big = Image.open(io.BytesIO(sample[9].read_bytes())).resize((250, 250))
    big.save(chips / "30_1_0_20170101000000009.jpg.chip.jpg", quality=92)
    (chips / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return root


EXPECTED_REASONS = {
    "not_an_image": 2,  # README.md, .DS_Store
    "malformed_name": 2,
    "unreadable_image": 3,  # empty, truncated, garbage
    "age_out_of_range": 1,
    "duplicate_content": 2,
    "conflicting_labels": 2,  # sample[6] and its copy with another age
    "unreadable_file": 1,  # dangling symlink
    "not_a_chip": 1,
}


@pytest.fixture(scope="module")
def prepared(source, tmp_path_factory):
    before = _hash_tree(source)
    out = tmp_path_factory.mktemp("prepared")
    result = prepare([source], out, PrepareSettings(seed=5), workers=2)
    return source, out, result, before


def test_every_file_is_accounted_for_once(prepared):
    source, out, result, _ = prepared
    files = [p for p in source.rglob("*") if p.is_file() or p.is_symlink()]
    assert result.seen == len(files) == result.accepted + result.rejected
    assert result.reasons == EXPECTED_REASONS
    manifest, rejected = _read_csv(out / "manifest.csv"), _read_csv(out / "rejected.csv")
    assert len(manifest) == result.accepted and len(rejected) == result.rejected
    sources = [row["source"] for row in manifest] + [row["source"] for row in rejected]
    assert sorted(sources) == sorted(str(p) for p in files)
    assert all(row["reason"] in REASONS and row["detail"] for row in rejected)
    record = json.loads((out / "prepare.json").read_text())
    assert record["counts"]["seen"] == result.seen and record["seed"] == 5


def test_the_readme_malformed_names_are_handled_on_purpose(prepared):
    _, out, result, _ = prepared
    listed = {item["name"]: item for item in result.malformed_names}
    assert set(listed) == set(README_MALFORMED) | {PHOTO_WITH_18_DIGITS[0]}
    assert listed[PHOTO_WITH_18_DIGITS[0]]["status"] == "accepted"
    manifest = {Path(row["source"]).name: row for row in _read_csv(out / "manifest.csv")}
    rejected = {Path(row["source"]).name: row for row in _read_csv(out / "rejected.csv")}
    for name, outcome in README_MALFORMED.items():
        if outcome == "accepted":
            assert listed[name]["status"] == "accepted"
            assert manifest[name]["note"] == listed[name]["detail"] != ""
        else:
            assert listed[name]["status"] == "rejected"
            assert rejected[name]["reason"] == "malformed_name"
            assert name not in manifest


def test_duplicates_keep_the_first_source_and_conflicts_keep_none(prepared):
    source, out, _, _ = prepared
    rejected = _read_csv(out / "rejected.csv")
    duplicates = [row for row in rejected if row["reason"] == "duplicate_content"]
    assert {Path(row["source"]).parent.name for row in duplicates} == {"zz_copies"}
    kept = {row["source"] for row in _read_csv(out / "manifest.csv")}
    for row in duplicates:
        first = row["detail"].removeprefix("same pixels as ")
        assert first in kept and first < row["source"]
    conflicts = [row for row in rejected if row["reason"] == "conflicting_labels"]
    assert {Path(row["source"]).parent.name for row in conflicts} == {"UTKFace", "zz_copies"}
    assert all(row["source"] not in kept for row in conflicts)


def test_chips_are_written_and_copied_without_loss(prepared):
    source, out, _, _ = prepared
    rows = load_manifest(out)
    assert rows and all(row.path.is_absolute() and row.path.is_file() for row in rows)
    assert len({row.path for row in rows}) == len(rows)
    for row in rows:
        assert row.path.parent == out / "chips" / row.split / row.dataset
        with Image.open(row.path) as chip:
            assert chip.size == (CHIP_SIZE, CHIP_SIZE) and chip.format == "JPEG"
        if "re-encoded" in row.note:
            assert Path(row.source).name.startswith("30_1_0_20170101000000009")
        else:
            assert row.path.read_bytes() == Path(row.source).read_bytes()  # copied byte for byte
        assert row.n_faces is None  # aligned chips are not re-detected


def test_split_is_by_photo_and_stratified(prepared):
    _, out, result, _ = prepared
    rows = load_manifest(out)
    splits_of_photo = defaultdict(set)
    for row in rows:
        splits_of_photo[row.photo].add(row.split)
    assert all(len(splits) == 1 for splits in splits_of_photo.values())
    assert any(len([r for r in rows if r.photo == d]) >= 3 for d in splits_of_photo)  # the test has teeth
    # The 18-digit datetime joins its photo's other faces.
    faces = [row for row in rows if Path(row.source).name in PHOTO_WITH_18_DIGITS]
    assert len(faces) == 4 and len({row.split for row in faces}) == 1
    total = len(rows)
    for split, fraction in zip(("train", "val", "test"), (0.7, 0.15, 0.15)):
        assert abs(result.splits[split] / total - fraction) < 0.05
    groups = AgeGroups.default()
    for row in rows:
        assert row.age_group == groups.label_of(row.age)
    for label in groups.labels:
        in_group = [row.split for row in rows if row.age_group == label]
        if len(in_group) >= 20:
            assert abs(in_group.count("train") / len(in_group) - 0.7) < 0.12, label


def test_sources_are_never_modified(prepared):
    source, _, _, before = prepared
    assert _hash_tree(source) == before
    assert not (source / "chips").exists() and not list(source.rglob("*.staging*"))


def test_rerun_gives_byte_identical_outputs(prepared, tmp_path):
    source, out, _, _ = prepared
    again = prepare([source], out, PrepareSettings(seed=5), workers=1)  # same folder, in-process
    assert again.seen == prepared[2].seen
    copy = tmp_path / "copy"
    prepare([source], copy, PrepareSettings(seed=5), workers=1)
    for name in ("manifest.csv", "rejected.csv", "prepare.json"):
        assert (copy / name).read_text().replace(str(copy), str(out)) == (out / name).read_text(), name
    other_seed = prepare([source], tmp_path / "seed6", PrepareSettings(seed=6), workers=1)
    assert (tmp_path / "seed6" / "manifest.csv").read_bytes() != (out / "manifest.csv").read_bytes()
    assert other_seed.accepted == again.accepted


def test_loader_reads_splits_and_settings(prepared):
    _, out, result, _ = prepared
    train = load_manifest(out, split="train")
    assert len(train) == result.splits["train"] and {row.split for row in train} == {"train"}
    settings = load_settings(out)
    assert settings.seed == 5 and settings.groups == AgeGroups.default()
    with pytest.raises(ValueError, match="train, val, test"):
        load_manifest(out, split="validation")
    with pytest.raises(DataError, match="no manifest.csv"):
        load_manifest(out / "chips")


# --------------------------------------------------------------------------- archives


@needs_utkface
def test_archives_are_read_in_memory(tmp_path):
    chips = _sample_chips(40)[:40]
    archives = tmp_path / "archives"
    archives.mkdir()
    with zipfile.ZipFile(archives / "UTKFace.zip", "w") as archive:
        for path in chips[:25]:
            archive.write(path, f"UTKFace/{path.name}")
        archive.writestr("../escape_20170101000000001.jpg.chip.jpg", chips[0].read_bytes())
        archive.writestr("UTKFace/inner.zip", b"PK")
    with tarfile.open(archives / "UTKFace.tar.gz", "w:gz") as archive:
        for path in chips[20:]:  # five chips overlap with the zip: duplicates
            archive.add(path, f"UTKFace/{path.name}")
        link = tarfile.TarInfo("UTKFace/1_0_0_20170101000000002.jpg.chip.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    (archives / "broken.tgz").write_bytes(b"\x1f\x8b not really gzip")
    before = _hash_tree(archives)

    result = prepare([archives], tmp_path / "out", workers=1)

    assert result.seen == 25 + 2 + 20 + 1 + 1 == result.accepted + result.rejected
    assert result.accepted == 40
    assert result.reasons == {
        "duplicate_content": 5,
        "nested_archive": 1,
        "unreadable_archive": 1,
        "unsafe_member": 2,
    }
    rejected = {row["source"]: row["reason"] for row in _read_csv(tmp_path / "out" / "rejected.csv")}
    assert (
        rejected[f"{archives / 'UTKFace.zip'}::../escape_20170101000000001.jpg.chip.jpg"] == "unsafe_member"
    )
    assert rejected[str(archives / "broken.tgz")] == "unreadable_archive"
    rows = load_manifest(tmp_path / "out")
    assert all("::UTKFace/" in row.source for row in rows)
    by_name = {path.name: path for path in chips}
    for row in rows:  # member bytes copied exactly
        assert row.path.read_bytes() == by_name[row.source.rsplit("/", 1)[1]].read_bytes()
    assert _hash_tree(archives) == before  # nothing extracted beside the archives, nothing changed


def test_a_tar_archive_given_directly(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (200, 120, 90)).save(buffer, "JPEG")
    with tarfile.open(tmp_path / "chips.tar", "w") as archive:
        info = tarfile.TarInfo("20_0_1_20170101000000001.jpg.chip.jpg")
        info.size = len(buffer.getvalue())
        archive.addfile(info, io.BytesIO(buffer.getvalue()))
    result = prepare([tmp_path / "chips.tar"], tmp_path / "out", workers=1)
    assert (result.seen, result.accepted) == (1, 1)


# --------------------------------------------------------------------------- failures mid-run


def _tiny_source(root: Path, count: int = 6) -> list[Path]:
    root.mkdir()
    paths = []
    for index in range(count):
        path = root / f"{20 + index}_0_0_2017010100000000{index}.jpg.chip.jpg"
        Image.new("RGB", (200, 200), (10 * index, 100, 200 - 10 * index)).save(path, "JPEG")
        paths.append(path)
    return paths


def test_a_file_vanishing_mid_run_is_counted(tmp_path):
    paths = _tiny_source(tmp_path / "src")

    def vanish(done, total):
        if done == 0:  # after the files were found, before any was read
            paths[2].unlink()

    result = prepare([tmp_path / "src"], tmp_path / "out", workers=1, on_progress=vanish)
    assert (result.seen, result.accepted, result.reasons) == (6, 5, {"unreadable_file": 1})
    (row,) = _read_csv(tmp_path / "out" / "rejected.csv")
    assert row["source"] == str(paths[2]) and "vanished" in row["detail"]


def test_a_file_without_read_permission_is_counted(tmp_path):
    if os.geteuid() == 0:
        pytest.skip(
            "runs as root, which reads any file whatever its mode; "
            "the vanishing-file and dangling-link tests cover unreadable_file"
        )
    paths = _tiny_source(tmp_path / "src")
    paths[1].chmod(0)
    try:
        result = prepare([tmp_path / "src"], tmp_path / "out", workers=1)
    finally:
        paths[1].chmod(0o644)
    assert (result.seen, result.accepted, result.reasons) == (6, 5, {"unreadable_file": 1})


# --------------------------------------------------------------------------- settings and guards


def test_balanced_groups_come_from_the_train_ages(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    for index in range(90):
        age = 1 + (index * 7) % 80
        Image.new("RGB", (200, 200), (index, 255 - index, 40)).save(
            root / f"{age}_{index % 2}_0_20170101{index:09d}.jpg.chip.jpg", "JPEG"
        )
    result = prepare([root], tmp_path / "out", PrepareSettings(balanced_groups=3), workers=1)
    settings = load_settings(tmp_path / "out")
    assert settings.balanced_groups == 3 and len(settings.groups) == 3
    train = load_manifest(tmp_path / "out", "train")
    assert settings.groups == AgeGroups.balanced([row.age for row in train], 3)
    shares = Counter(row.age_group for row in train)
    assert max(shares.values()) - min(shares.values()) <= len(train) // 6
    assert result.groups == settings.groups


def test_output_folder_guards(tmp_path):
    _tiny_source(tmp_path / "src", 2)
    with pytest.raises(DataError, match="inside the source"):
        prepare([tmp_path / "src"], tmp_path / "src" / "out")
    with pytest.raises(DataError, match="contain the source"):
        prepare([tmp_path / "src"], tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        prepare([tmp_path / "src"], foreign)
    assert (foreign / "keep.txt").read_text() == "mine"
    with pytest.raises(DataError, match="no such file"):
        prepare([tmp_path / "missing"], tmp_path / "out")
    with pytest.raises(ValueError, match="balanced_groups"):
        PrepareSettings(balanced_groups=1)


def test_discover_counts_a_file_reached_twice_once(tmp_path):
    paths = _tiny_source(tmp_path / "src", 3)
    result = prepare([tmp_path / "src", paths[0], tmp_path / "src"], tmp_path / "out", workers=1)
    assert (result.seen, result.accepted) == (3, 3)


# --------------------------------------------------------------------------- in-the-wild photos


@needs_utkface
def test_a_wild_photo_becomes_an_aligned_chip_of_its_main_subject(tmp_path):
    chip = Image.open(UTKFACE / "26_1_0_20170116184651548.jpg.chip.jpg").convert("RGB")
    other = Image.open(UTKFACE / "52_0_0_20170116233057278.jpg.chip.jpg").convert("RGB")
    root = tmp_path / "part1"
    root.mkdir()
    canvas = Image.new("RGB", (640, 480), (120, 130, 140))
    canvas.paste(chip, (220, 140))  # the subject: large and central
    canvas.paste(other.resize((110, 110)), (10, 10))  # a bystander in the corner
    canvas.save(root / "26_1_0_20170116184651548.jpg", quality=95)
    Image.new("RGB", (400, 300), (70, 70, 70)).save(root / "40_0_0_20170101000000002.jpg")

    result = prepare([root], tmp_path / "out", workers=1)

    assert (result.seen, result.accepted, result.reasons) == (2, 1, {"no_face_found": 1})
    (row,) = load_manifest(tmp_path / "out")
    assert row.age == 26 and row.n_faces == 2 and "kept the main subject" in row.note
    made = np.asarray(Image.open(row.path).convert("RGB"), dtype=np.float64)
    assert made.shape == (CHIP_SIZE, CHIP_SIZE, 3)
    # The chip shows the subject, not the bystander: it is far closer to the subject's chip.
    centre = slice(50, 150)
    subject = np.abs(made[centre, centre] - np.asarray(chip, dtype=np.float64)[centre, centre]).mean()
    bystander = np.abs(made[centre, centre] - np.asarray(other, dtype=np.float64)[centre, centre]).mean()
    assert subject < bystander
