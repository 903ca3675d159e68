"""URLs that probe Go's net/url.ParseRequestURI, for tools/gourl (run by hand) and tests.

`python -m tests.go_url_cases` prints them as a JSON list. They are also the URL grammar
the differential tests of LHB104 draw from (tests/policy/test_differential.py).
"""

from __future__ import annotations

import json
import random
import sys

SCHEMES = ["http", "https", "HTTP", "hTtps", "ftp", "s3", "", "1http", "h+t.t-p", "http "]
USERINFO = ["", "u@", "u:p@", "@", "a@b@", "u%41@", "u%zz@", "u p@", "ü@", "u/x@"]
HOSTS = [
    *("example.com", "EXAMPLE.com", "localhost", "LocalHost", "localhost.localdomain"),
    *("a.localhost", "localhost.", "xlocalhost", "localhost.com", "127.0.0.1", "127.255.1.9"),
    *("127.0.0.256", "127.0.0.01", "127.1", "0.0.0.0", "0.0.0.00", "10.0.0.1", "1.2.3.4"),
    *("[::1]", "[0:0:0:0:0:0:0:1]", "[::0:1]", "[0000::0001]", "[::]", "[::0]", "[0::0.0.0.1]"),
    *("[::ffff:127.0.0.1]", "[::FFFF:7f00:1]", "[::ffff:10.0.0.1]", "[1::]", "[::2]", "[fe80::1]"),
    *("[::1%25eth0]", "[::1%25]", "[::1%eth0]", "[::1", "::1", "[0:0:0:0:0:0:0:0:1]"),
    *("[0:0:0:0:0:0:0::1]", "[::1:0]", "[0:0:0:0:0:0:0.0.0.1]", "[::0:0:0:0:0:0:1]"),
    *("host_name", "h%41st", "h%25st", "h%e2%82%acst", "h st", "h^st", 'h"st', "", "ho:st"),
    *("[v1.x]", "x]", "[x]y", "h€st"),
]
PORTS = ["", ":80", ":", ":8x", ":99999", "::80"]
PATHS = ["", "/", "/a/b", "/a%20b", "/a%zz", "/a b", "/#frag", "/p?q=1", "?q", "/?", "/a?#%zz"]
WHOLE = [
    *("", "*", ":", "/", "//", "/x", "//h/x", "http:", "http:h", "http:/x", "http://"),
    *("http:///x", "http://h\x7f/", "http://h\t/", "http://[::1]x/", "http://[::1]:8x/"),
    *("http://h:80:90/", "http://[::1]:80/", "mailto:x@y", "HTTP://LOCALHOST/", "http://h/ "),
]


def cases(count: int = 1500, seed: int = 12) -> list[str]:
    rand = random.Random(seed)
    out = list(WHOLE)
    for host in HOSTS:
        out += [f"http://{host}/", f"https://u@{host}:8080/x"]
    for _ in range(count):
        scheme = rand.choice(SCHEMES)
        head = f"{scheme}://" if rand.random() < 0.9 else f"{scheme}:"
        out.append(
            head
            + rand.choice(USERINFO)
            + rand.choice(HOSTS)
            + rand.choice(PORTS)
            + rand.choice(PATHS)
        )
    return list(dict.fromkeys(out))


if __name__ == "__main__":
    json.dump(cases(), sys.stdout)
