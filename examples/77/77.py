import sys
print("Now exiting with code 77.")
sys.exit(77)
