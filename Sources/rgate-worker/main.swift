import RgateIPC
import RgateWorker

// The worker process (the zygote): started by `rgate serve` with its control socket on fd 3.
// R must start on a single-threaded main thread (the zygote forks), so nothing else runs first.
// This executable links R and the session code only: the supervisor's HTTP, TLS, database and
// configuration libraries never enter the image every session process is forked from.
Zygote.run(control: ControlSocket(descriptor: 3))
