def f():
    s = 'ab\