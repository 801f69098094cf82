"""What runs inside the task container: no Hydra, no Docker; aiohttp and PyYAML only.

`python -m launcher.harness run --config /results/run_config.json` evaluates one task;
`python -m launcher.harness rescore /results` scores saved responses again without any request.
"""
