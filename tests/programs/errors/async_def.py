async def main():
    return 1
# error: async_def.py:1:1: not supported in Spore: async
