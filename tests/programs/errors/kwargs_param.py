def f(*args, **kwargs):
    return args


def main():
    return f(1)
# error: kwargs_param.py:1:14: not supported in Spore: **kwargs
