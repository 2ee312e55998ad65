def main():
    class Point:
        pass
    return 1
# error: class_in_function.py:2:5: not supported in Spore: class definitions inside functions
