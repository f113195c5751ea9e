"""The sweep's vocabulary, shared by the Snakefile, the CLI and the analysis (no torch here, so
parsing the Snakefile stays fast)."""

ARMS = ("none", "21k", "dep", "ddep")
DENOISING_ARMS = ("dep", "ddep")    # pretrained with the denoising objective
SUPERVISED_ARMS = ("21k", "ddep")   # start from (DDeP: freeze) a supervised encoder
