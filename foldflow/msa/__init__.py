"""Multiple sequence alignments: search engines and precomputed input.

Every engine returns a list of :class:`Alignment`, one per database, in the
text format AlphaFold's parsers read (Stockholm or A3M).
"""

from foldflow.msa.alignment import Alignment, MsaMismatchError, check_query_row

__all__ = ["Alignment", "MsaMismatchError", "check_query_row"]
