"""Output sets of `dynface restore`, in the order a photo meets them.

1. `names.output_names`: one safe, unique name per input (`printable` for showing paths).
2. `sets.OutputFolder.check`: the output folder is writable and holds no input.
3. `sets.OutputFolder.claim`: lock one photo's set; skip it when done, busy or in the way.
4. `sets.Claim.commit`: write the set, record last; a crash leaves a record a rerun redoes.
5. `manifest.append_line`: one JSON line per photo in `manifest.jsonl` (`read_manifest`).
"""

from dynface.outputs.names import output_names, printable, safe_name
from dynface.outputs.sets import Claim, OutputFolder, PhotoFiles

__all__ = ["Claim", "OutputFolder", "PhotoFiles", "output_names", "printable", "safe_name"]
