def main():
    x = 1
      return x
# error: bad_indent.py:3:7:
