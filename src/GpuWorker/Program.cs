// The GpuWorker process (one rank). Its gRPC services arrive with the expert-parallel engine (issue 5).
Console.Error.WriteLine("jetpack-worker: the expert-parallel worker is not built yet (issue 5); use `jetpack` for single-process runs.");
return 2;
