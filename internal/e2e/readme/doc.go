// Package readme holds one end-to-end test, TestReadme: README.md run as
// written, every ```sh block in order, section by section, with the real
// programs. A walk-through added to the README is run by it too; the
// conventions for blocks that must not run, or must fail, are in
// readme_test.go and in an HTML comment at the top of the README's
// walk-through. It has no code of its own, and its own package so that its
// minutes do not count against internal/e2e's test timeout.
package readme
