# Thin wrappers; the README's commands are `sh scripts/dev.sh demo` and `sh scripts/dev.sh test`.
.PHONY: demo test bench setup
demo test bench setup:
	sh scripts/dev.sh $@
