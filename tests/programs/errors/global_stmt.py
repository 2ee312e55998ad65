COUNT = 0


def main():
    global COUNT
    return COUNT
# error: global_stmt.py:5:5: not supported in Spore: global
