"""Third-party reference code vendored verbatim for tests; never imported by foldflow itself."""
