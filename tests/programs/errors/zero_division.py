def main():
    n = 0
    return 10 // n
# error: zero_division.py:3:15: ZeroDivisionError: integer division or modulo by zero
