import spore
from spore import ops

def add(x, y=2):
    return x + y

def main():
    a = 1
    if a > 0:
        b = 2
    else:
        b = 3
        c = 4
    print(b)
    return add(a, y=b)
