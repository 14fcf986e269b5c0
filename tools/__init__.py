"""Developer tools: devnet, benchmarks, load generators."""
