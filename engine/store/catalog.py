"""Reading and writing backing-image.cfg documents, and listing what a store holds."""

from __future__ import annotations

from collections.abc import Iterator

from longhorn_bi.engine.errors import BackupstoreError, NotFound
from longhorn_bi.engine.names import name_problem
from longhorn_bi.engine.store.drivers.base import StoreDriver, TooLarge, read_at_most
from longhorn_bi.engine.store.layout import (
    BLOCK_SUFFIX,
    BLOCKS_DIR,
    IMAGES_DIR,
    BackingImageCfg,
    cfg_key,
    is_block_name,
)

# A cfg lists about 100 bytes per stored 2 MiB block: 16 MiB is some 160 000 blocks, 320 GiB
# of data. Parsed, that is about 100 MiB of Python objects, inside restore's and verify's
# memory bound (200 MiB); a larger cfg is refused before it is read.
MAX_CFG_BYTES = 16 * 1024 * 1024


def load_cfg(store: StoreDriver, name: str) -> BackingImageCfg | None:
    """The cfg of `name`, or None when the store has no backup of that name."""
    key = cfg_key(name)
    try:
        raw = read_at_most(store, key, MAX_CFG_BYTES)
    except NotFound:
        return None
    except TooLarge:
        raise BackupstoreError(
            f"{key} in {store.url} is larger than {MAX_CFG_BYTES // (1024 * 1024)} MiB, far more "
            "than a backing image config holds",
            hint="the backupstore holds a damaged or foreign file; delete that backup",
        ) from None
    return BackingImageCfg.from_json(raw, where=f"{key} in {store.url}")


def require_cfg(store: StoreDriver, name: str) -> BackingImageCfg:
    cfg = load_cfg(store, name)
    if cfg is None:
        raise NotFound(
            f"no backup of backing image {name!r} in {store.url}",
            hint="list the backups with: kubectl longhorn-bi store ls TARGET",
        )
    return cfg


def save_cfg(store: StoreDriver, cfg: BackingImageCfg) -> None:
    store.write(cfg_key(cfg.name), cfg.to_json())


def image_names(store: StoreDriver) -> list[str]:
    """Names of the backing image folders; folders that are not valid names are ignored."""
    return [name for name in store.list(IMAGES_DIR) if name_problem(name) is None]


def block_names(store: StoreDriver) -> Iterator[str]:
    """Every block stored on the target, at its place blocks/xx/yy/<name>.blk.

    One recursive listing (Longhorn lists the two folder levels one by one: up to 65536
    LIST calls on S3).
    """
    for key in store.walk(BLOCKS_DIR):
        parts = key.split("/")
        if len(parts) != 3 or not parts[2].endswith(BLOCK_SUFFIX):
            continue
        name = parts[2].removesuffix(BLOCK_SUFFIX)
        if is_block_name(name) and parts[0] == name[0:2] and parts[1] == name[2:4]:
            yield name
