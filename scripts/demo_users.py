"""The demo users `ets serve --demo` prints on stderr: their names, what each is for, and the
password, as the API scripts (api-fuzz.sh, load-test.sh) read them."""

import re


def read(log_path):
    """Returns ([(user, purpose)], password) from the server's stderr log."""
    users, in_users, password = [], False, None
    for line in open(log_path, encoding="utf-8"):
        m = re.match(r"serve: demo users \(password (\S+)\):", line)
        if m:
            in_users, password = True, m.group(1)
            continue
        if in_users:
            m = re.match(r"  (\S+)\s+(.*)$", line.rstrip("\n"))
            if not m:
                in_users = False
                continue
            users.append((m.group(1), m.group(2)))
    return users, password
