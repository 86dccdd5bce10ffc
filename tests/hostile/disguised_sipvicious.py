"""Run one of Debian's sipvicious tools with another User-Agent than its own "friendly-scanner"
(which the edge drops unheard): what a scanner does once it knows that name is filtered.

    python3 disguised_sipvicious.py "Zoiper rv2.10.8" svwar -p 5060 -d names.txt 127.0.0.1

Only the default value of the User-Agent its requests are built with changes; the tool is run as
installed (/usr/bin/<tool>, its package under /usr/share/sipvicious).
"""

import runpy
import sys

sys.path.insert(0, "/usr/share/sipvicious")

from sipvicious.libs import svhelper  # noqa: E402 - from the path just added

user_agent, tool, *arguments = sys.argv[1:]
code = svhelper.makeRequest.__code__
names = code.co_varnames[:code.co_argcount]
defaults = list(svhelper.makeRequest.__defaults__)
defaults[names.index("useragent") - (len(names) - len(defaults))] = user_agent
svhelper.makeRequest.__defaults__ = tuple(defaults)
sys.argv = [tool, *arguments]
runpy.run_path(f"/usr/bin/{tool}", run_name="__main__")
