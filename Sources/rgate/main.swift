import Dispatch
#if canImport(Glibc)
import Glibc
#endif

Task {
    await Rgate.main()
    exit(0)
}
dispatchMain()
