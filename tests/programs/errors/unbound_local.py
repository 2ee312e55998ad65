def main():
    if 1 > 2:
        v = 1
    return v + 1
# error: unbound_local.py:4:14: UnboundLocalError
