import Dispatch
import RgateIPC
import RgateWorker
#if canImport(Glibc)
import Glibc
#endif

// `rgate worker` must start R on a single-threaded main thread (it forks), so it is dispatched
// here before anything can start a thread: no argument parser, no Swift concurrency.
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "worker" {
    Zygote.run(control: ControlSocket(descriptor: 3))
}

Task {
    await Rgate.main()
    exit(0)
}
dispatchMain()
