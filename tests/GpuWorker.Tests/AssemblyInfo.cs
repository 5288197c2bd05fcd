// torch already uses both cores, and process tests start several workers: one test at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
