# Task runner. `make demo` and `make test` build whatever environment is missing first.
.PHONY: setup system-deps test demo lint format bench bench-duplicates clean

setup:
	bash scripts/setup.sh

system-deps:
	bash scripts/system-deps.sh

test: setup system-deps
	.venv/bin/pytest

demo: setup system-deps
	bash scripts/demo.sh

lint: setup
	.venv/bin/ruff check curator plugins app training db tests bench examples scripts
	.venv/bin/ruff format --check curator plugins app training db tests bench examples scripts
	.venv/bin/mypy

format: setup
	.venv/bin/ruff format curator plugins app training db tests bench examples scripts
	.venv/bin/ruff check --fix curator plugins app training db tests bench examples scripts

bench: setup system-deps
	.venv/bin/python bench/ingest_bench.py
	.venv/bin/python bench/tagging_bench.py
	.venv/bin/python bench/analyzer_bench.py
	.venv/bin/python bench/review_bench.py
	.venv/bin/python bench/review_browser_bench.py
	.venv/bin/python bench/rebalance_bench.py
	.venv/bin/python bench/prompts_bench.py
	.venv/bin/python bench/export_bench.py
	.venv/bin/python bench/suspects_bench.py
	.venv/bin/python bench/trap_bench.py
	.venv/bin/python bench/trap_learn_bench.py
	.venv/bin/python bench/search_bench.py
	.venv/bin/python bench/ray_bench.py
	.venv/bin/python bench/duplicates_bench.py
	.venv/bin/python bench/explore_bench.py
	.venv/bin/python bench/latents_bench.py
	bash scripts/real-music.sh >/dev/null
	.venv/bin/python bench/real_music_bench.py

bench-duplicates: setup system-deps
	.venv/bin/python bench/duplicates_bench.py

clean:
	rm -rf demo .pytest_cache .mypy_cache .ruff_cache
