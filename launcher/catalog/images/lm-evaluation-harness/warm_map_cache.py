"""Store, in a prepared datasets cache, the `datasets.map()` results lm-eval's tasks compute from it.

    python3 warm_map_cache.py OUT FOLDER TASK [TASK ...]

OUT is the cache folder prepare_hf_cache.py wrote, seen at run time as $HF_DATASETS_CACHE/FOLDER. lm-eval
0.4.8 calls a task's `process_docs` (a `datasets.map()`) again each time it reads the task's documents, once
per filter among them; gpqa's shuffles the choices with `random`, so only datasets' on-disk map cache
(cache-<fingerprint>.arrow next to the data, loaded instead of mapping again) keeps the prompt and every
filter's target on the same shuffle, as it does on a connected machine after the first run. The cache is
mounted read-only, where datasets cannot write that file, so it is made here: the tasks are built once with
a datasets cache that holds OUT under FOLDER. The fingerprint is a hash of the dataset's relative folder and
of the function, not of the absolute path, so the run finds the file. Runs inside the image (the recipe's
data step), with the image's lm-eval and datasets.
"""

import os
import sys
import tempfile

FOLDERS = ["gpqa/cot_zeroshot", "custom/adlr_gpqa_cot_5_shot"]  # under lm_eval/tasks/


def main(out: str, folder: str, tasks: list[str]) -> None:
    root = tempfile.mkdtemp()
    os.symlink(os.path.abspath(out), os.path.join(root, folder))
    os.environ["HF_DATASETS_CACHE"] = root
    os.environ["HF_DATASETS_IN_MEMORY_MAX_SIZE"] = "0"  # mapped on disk, so the result is stored
    import lm_eval.tasks
    from lm_eval.tasks import TaskManager, get_task_dict

    # only the tasks' own folders are indexed (all of lm-eval's 8,700 task files take minutes here)
    here = os.path.dirname(lm_eval.tasks.__file__)
    folders = [os.path.join(here, f) for f in FOLDERS]
    manager = TaskManager(include_path=folders, include_defaults=False)
    for name, task in get_task_dict(tasks, manager).items():
        print(name, len(task.eval_docs))
    stored = [f for _, _, files in os.walk(out) for f in files if f.startswith("cache-")]
    if not stored:
        sys.exit(f"no map cache was written under {out} for {tasks}")
    for where, _, files in os.walk(out):  # lock files do not belong in a read-only cache
        for f in files:
            if f.endswith(".lock"):
                os.remove(os.path.join(where, f))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
