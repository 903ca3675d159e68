"""A grammar of backup URLs, right and wrong, for the tests of LHB201's CEL form."""

from __future__ import annotations

from hypothesis import strategies as st

SCHEMES = ["s3", "nfs", "cifs", "azblob", "vfs", "S3", "http", "", "s3:"]
NETLOCS = [
    *("bucket@us-east-1", "bucket", "bucket@", "@us-east-1", "b@r@s", "b:p@r", "backupbucket"),
    *("nfs-server:", "nfs-server", "10.0.0.5:", "h:2049", "h:x", "[::1]:", "[::1", "h%41"),
    *("container@core.windows.net", "ab", "a--b", "UPPER", "c" * 64, "abc", "-ab@x", ""),
    *("a_b", "...", "h.example.com", "server"),
]
PATHS = [
    *("", "/", "/backupstore", "/a/b/", "/./x", "/x/..", "/../", "//", "/a%2e", "/x#y"),
    *("/a b", "/a\tb", "/share", "/share/path/", "/.x", "/..x", "/~u", "/a@b", "/'q"),
]
QUERIES = [
    *("?backingImage=parrot", "?backingImage=Bad", "?backingImage=a", "?backingImage="),
    *("?backingImage=img&backingImage=x", "?nfsOptions=soft&backingImage=img", "?x=1"),
    *("?nfsOptions=vers=4.2,soft&backingImage=img", "?nfsOptions=a+b&backingImage=img"),
    *("?backingImage=im%67", "?backingImage=a+b", "&backingImage=img", "", "?"),
    *("?backingImage=" + "a" * 253, "?backingImage=" + "a" * 254, "?backingImage=img#f"),
]


@st.composite
def backup_urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(SCHEMES[:5]) | st.sampled_from(SCHEMES))
    head = draw(st.sampled_from([f"{scheme}://"] * 5 + [f"{scheme}:/", scheme]))
    parts = (NETLOCS, PATHS, QUERIES)
    plain = ("bucket@us-east-1", "/", "?backingImage=parrot")  # as often as the odd ones
    return head + "".join(
        draw(st.sampled_from(part) | st.just(usual))
        for part, usual in zip(parts, plain, strict=True)
    )


BACKUP_URLS = st.one_of(backup_urls(), st.text(max_size=10))
