"""ISO-BMFF (CMAF) helpers for segment tasks: write one media segment from encoded samples, and read or
patch the few fields of an init segment that the manifests and the audio timeline need.

Pure byte manipulation, no PyAV: the init segment comes from FFmpeg's mp4 muxer (empty_moov), the
samples from an encoder, and each segment is built here so that segments can be encoded independently.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
_TRUN_FLAGS = 0x000701  # data-offset | sample-duration | sample-size | sample-flags
_SYNC_SAMPLE_FLAGS = 0x02000000  # sample_depends_on = 2 (depends on no other)
_NON_SYNC_SAMPLE_FLAGS = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample = 1
_U32_MAX = 0xFFFFFFFF

# Where a box's child boxes start, past its own header, for boxes that hold fields before their children.
_CHILDREN_AFTER = {"stsd": 8, "meta": 4, "avc1": 78, "avc3": 78, "mp4a": 28}
_CONTAINERS = {"moov", "trak", "mdia", "minf", "stbl", "edts", "mvex", "dinf", "moof", "traf", "udta", *_CHILDREN_AFTER}


@dataclass(frozen=True)
class Sample:
    data: bytes  # one encoded access unit: H.264 in AVCC (length-prefixed) form, or raw AAC
    duration: int  # in the track's timescale
    keyframe: bool


# --- writing -------------------------------------------------------------------------------------


def media_segment(sequence_number: int, track_id: int, base_decode_time: int, samples: Sequence[Sample]) -> bytes:
    """A CMAF media segment: `styp`, one `moof` with one `traf`, and one `mdat` holding the samples in order.

    Composition offsets are not written (trun version 0), so samples must be in presentation order:
    encode without B-frames.
    """
    if not samples:
        raise ValueError("a media segment needs at least one sample")
    payload = b"".join(sample.data for sample in samples)
    mdat = _box("mdat", payload)
    header_size = len(mdat) - len(payload)
    # The moof's size does not depend on data_offset's value, so build it once to measure it.
    moof_size = len(_moof(sequence_number, track_id, base_decode_time, samples, 0))
    moof = _moof(sequence_number, track_id, base_decode_time, samples, moof_size + header_size)
    return _styp() + moof + mdat


def annexb_to_avcc(data: bytes) -> bytes:
    """Turn an Annex B access unit (start codes, as libx264 emits even with a global header) into the
    4-byte length-prefixed NAL units that an `avc1` sample must hold."""
    return b"".join(struct.pack(">I", len(nal)) + nal for nal in _annexb_nal_units(data))


def _styp() -> bytes:
    return _box("styp", b"msdh" + struct.pack(">I", 0) + b"msdh" + b"msix")


def _moof(sequence_number: int, track_id: int, base_decode_time: int, samples: Sequence[Sample], data_offset: int) -> bytes:
    mfhd = _full_box("mfhd", 0, 0, struct.pack(">I", sequence_number))
    tfhd = _full_box("tfhd", 0, _TFHD_DEFAULT_BASE_IS_MOOF, struct.pack(">I", track_id))
    tfdt = _full_box("tfdt", 1, 0, struct.pack(">Q", base_decode_time))
    return _box("moof", mfhd + _box("traf", tfhd + tfdt + _trun(samples, data_offset)))


def _trun(samples: Sequence[Sample], data_offset: int) -> bytes:
    entries = b"".join(
        struct.pack(">III", sample.duration, len(sample.data), _SYNC_SAMPLE_FLAGS if sample.keyframe else _NON_SYNC_SAMPLE_FLAGS)
        for sample in samples
    )
    return _full_box("trun", 0, _TRUN_FLAGS, struct.pack(">Ii", len(samples), data_offset) + entries)


def _box(box_type: str, payload: bytes) -> bytes:
    size = 8 + len(payload)
    if size <= _U32_MAX:
        return struct.pack(">I4s", size, box_type.encode("latin-1")) + payload
    return struct.pack(">I4sQ", 1, box_type.encode("latin-1"), size + 8) + payload


def _full_box(box_type: str, version: int, flags: int, payload: bytes) -> bytes:
    return _box(box_type, struct.pack(">I", (version << 24) | flags) + payload)


def _annexb_nal_units(data: bytes) -> list[bytes]:
    starts = _start_code_ends(data)
    if not starts:
        raise ValueError("no Annex B start code found")
    bounds = zip(starts, [*(start - 3 for start in starts[1:]), len(data)], strict=True)
    # A NAL unit never ends in a zero byte, so trailing zeros are padding or a 4-byte start code's first byte.
    return [data[begin:end].rstrip(b"\x00") for begin, end in bounds]


def _start_code_ends(data: bytes) -> list[int]:
    ends, position = [], data.find(b"\x00\x00\x01")
    while position != -1:
        ends.append(position + 3)
        position = data.find(b"\x00\x00\x01", position + 3)
    return ends


# --- reading -------------------------------------------------------------------------------------


def parse_boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[str, int, int]]:
    """(type, start, end) of the boxes laid end to end in data[start:end]; size 1 (64-bit) and 0 (to the end)."""
    end = len(data) if end is None else end
    boxes = []
    while start < end:
        box_end, _ = _box_bounds(data, start, end)
        boxes.append((data[start + 4 : start + 8].decode("latin-1"), start, box_end))
        start = box_end
    return boxes


def find_box(data: bytes, path: str) -> bytes | None:
    """The first box (header included) at `path` below the top level, e.g. "moov/trak/mdia/mdhd"."""
    found = _find(data, 0, len(data), path.split("/"))
    return None if found is None else data[found[0] : found[1]]


def track_timescale(init: bytes) -> int:
    """The media timescale of the init segment's (first) track, from its mdhd."""
    version, body = _full_box_body(_require(init, "moov/trak/mdia/mdhd"))
    offset = 16 if version == 1 else 8  # past creation_time and modification_time
    return struct.unpack_from(">I", body, offset)[0]


def track_id(init: bytes) -> int:
    """The track_ID of the init segment's (first) track, from its tkhd."""
    version, body = _full_box_body(_require(init, "moov/trak/tkhd"))
    offset = 16 if version == 1 else 8
    return struct.unpack_from(">I", body, offset)[0]


def init_codecs(init: bytes) -> str:
    """The RFC 6381 codecs string of the init segment's (first) sample entry: avc1/avc3 or AAC."""
    stsd = _require(init, "moov/trak/mdia/minf/stbl/stsd")
    entries = parse_boxes(stsd, _header_size(stsd) + _CHILDREN_AFTER["stsd"])
    if not entries:
        raise ValueError("stsd has no sample entry")
    entry_type, start, end = entries[0]
    entry = stsd[start:end]
    if entry_type in ("avc1", "avc3"):
        return _avc_codecs(entry_type, entry)
    if entry_type == "mp4a":
        return _aac_codecs(entry)
    raise ValueError(f"unsupported sample entry {entry_type!r}")


# --- patching ------------------------------------------------------------------------------------


def with_edit_list(init: bytes, media_time: int) -> bytes:
    """The init segment with one edit (segment_duration 0 = the whole media, starting at media_time, rate 1)
    placed in its single trak right after tkhd, replacing any edts there.

    Used to hide the AAC encoder's priming samples: media_time maps to presentation time 0.
    """
    if media_time < 0:
        raise ValueError("media_time must be >= 0 (-1, an empty edit, is not what this is for)")
    top = parse_boxes(init)
    moov_index = _only_index(top, "moov")
    _, moov_start, moov_end = top[moov_index]
    moov = init[moov_start:moov_end]
    new_moov = _rebuild(moov, lambda children: _with_patched_trak(moov, children, media_time))
    return init[:moov_start] + new_moov + init[moov_end:]


def _with_patched_trak(moov: bytes, children: list[tuple[str, int, int]], media_time: int) -> list[bytes]:
    trak_index = _only_index(children, "trak")
    parts = [moov[start:end] for _, start, end in children]
    trak = parts[trak_index]
    parts[trak_index] = _rebuild(trak, lambda trak_children: _with_edts(trak, trak_children, media_time))
    return parts


def _with_edts(trak: bytes, children: list[tuple[str, int, int]], media_time: int) -> list[bytes]:
    kept = [(box_type, trak[start:end]) for box_type, start, end in children if box_type != "edts"]
    tkhd_index = next((i for i, (box_type, _) in enumerate(kept) if box_type == "tkhd"), None)
    if tkhd_index is None:
        raise ValueError("trak has no tkhd")
    kept.insert(tkhd_index + 1, ("edts", _edts(media_time)))
    return [box for _, box in kept]


def _edts(media_time: int) -> bytes:
    if media_time <= 0x7FFFFFFF:
        entry, version = struct.pack(">Ii", 0, media_time), 0
    else:
        entry, version = struct.pack(">Qq", 0, media_time), 1
    media_rate = struct.pack(">hh", 1, 0)  # 1.0 as integer and fraction parts
    return _box("edts", _full_box("elst", version, 0, struct.pack(">I", 1) + entry + media_rate))


def _rebuild(box: bytes, new_children: Callable[[list[tuple[str, int, int]]], list[bytes]]) -> bytes:
    """The box with its children replaced; sizes are recomputed, so every enclosing size stays right."""
    children = parse_boxes(box, _header_size(box))
    return _box(box[4:8].decode("latin-1"), b"".join(new_children(children)))


# --- low-level reading ---------------------------------------------------------------------------


def _box_bounds(data: bytes, start: int, limit: int) -> tuple[int, int]:
    """(end, header size) of the box at start, which must lie within data[:limit]."""
    if limit - start < 8:
        raise ValueError(f"truncated box header at {start}")
    size = struct.unpack_from(">I", data, start)[0]
    header = 8
    if size == 1:
        if limit - start < 16:
            raise ValueError(f"truncated largesize header at {start}")
        size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
    elif size == 0:
        size = limit - start
    if size < header or start + size > limit:
        raise ValueError(f"bad box size {size} at {start}")
    return start + size, header


def _header_size(box: bytes) -> int:
    return _box_bounds(box, 0, len(box))[1]


def _find(data: bytes, start: int, end: int, path: list[str]) -> tuple[int, int] | None:
    for box_type, box_start, box_end in parse_boxes(data, start, end):
        if box_type != path[0]:
            continue
        if len(path) == 1:
            return box_start, box_end
        if box_type not in _CONTAINERS:
            continue
        children_start = _children_start(data, box_type, box_start)
        found = _find(data, children_start, box_end, path[1:])
        if found is not None:
            return found
    return None


def _children_start(data: bytes, box_type: str, box_start: int) -> int:
    _, header = _box_bounds(data, box_start, len(data))
    start = box_start + header + _CHILDREN_AFTER.get(box_type, 0)
    if box_type == "mp4a":
        # QuickTime sound sample description versions 1 and 2 carry 16 and 36 more bytes.
        version = struct.unpack_from(">H", data, box_start + header + 8)[0]
        start += {0: 0, 1: 16, 2: 36}.get(version, 0)
    return start


def _require(data: bytes, path: str) -> bytes:
    box = find_box(data, path)
    if box is None:
        raise ValueError(f"no {path} box")
    return box


def _full_box_body(box: bytes) -> tuple[int, bytes]:
    """(version, the bytes after version and flags)."""
    header = _header_size(box)
    return box[header], box[header + 4 :]


def _only_index(boxes: list[tuple[str, int, int]], box_type: str) -> int:
    indexes = [i for i, (found_type, _, _) in enumerate(boxes) if found_type == box_type]
    if len(indexes) != 1:
        raise ValueError(f"expected exactly one {box_type}, found {len(indexes)}")
    return indexes[0]


# --- codecs strings ------------------------------------------------------------------------------


def _avc_codecs(entry_type: str, entry: bytes) -> str:
    avcc = _require(entry, f"{entry_type}/avcC")
    header = _header_size(avcc)
    profile, compatibility, level = avcc[header + 1 : header + 4]
    return f"{entry_type}.{profile:02x}{compatibility:02x}{level:02x}"


def _aac_codecs(entry: bytes) -> str:
    esds = _require(entry, "mp4a/esds")
    _, body = _full_box_body(esds)
    es = _descriptor_payload(body, _descriptor(body, 0, 0x03))
    # ES_Descriptor: ES_ID (2), then flags saying which optional fields follow.
    flags, position = es[2], 3
    position += 2 if flags & 0x80 else 0  # dependsOn_ES_ID
    position += 1 + es[position] if flags & 0x40 else 0  # URL
    position += 2 if flags & 0x20 else 0  # OCR_ES_Id
    config = _descriptor_payload(es, _descriptor(es, position, 0x04))
    object_type_indication = config[0]
    if object_type_indication != 0x40:
        raise ValueError(f"unsupported mp4a objectTypeIndication 0x{object_type_indication:02x}")
    specific = _descriptor_payload(config, _descriptor(config, 13, 0x05))
    return f"mp4a.40.{_audio_object_type(specific)}"


def _descriptor(data: bytes, position: int, tag: int) -> tuple[int, int]:
    """(payload start, payload end) of the descriptor with `tag` at or after position, skipping others."""
    while position < len(data):
        found_tag, position = data[position], position + 1
        length = 0
        for _ in range(4):  # expandable size: 7 bits per byte while the top bit is set
            byte, position = data[position], position + 1
            length = (length << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        if found_tag == tag:
            return position, position + length
        position += length
    raise ValueError(f"no descriptor with tag {tag}")


def _descriptor_payload(data: bytes, bounds: tuple[int, int]) -> bytes:
    return data[bounds[0] : bounds[1]]


def _audio_object_type(audio_specific_config: bytes) -> int:
    bits = int.from_bytes(audio_specific_config[:2].ljust(2, b"\x00"), "big")
    object_type = bits >> 11
    if object_type == 31:  # escape: 32 + the next 6 bits
        object_type = 32 + ((bits >> 5) & 0x3F)
    return object_type
