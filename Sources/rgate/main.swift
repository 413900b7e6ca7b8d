print("rgate")
