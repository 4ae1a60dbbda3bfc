"""Multiple sequence alignments: search engines and precomputed input.

Every engine returns a list of :class:`foldflow.alignment.Alignment`, one per database, in the text format
AlphaFold's parsers read (Stockholm or A3M).
"""
