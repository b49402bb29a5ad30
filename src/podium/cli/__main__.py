"""`python -m podium.cli ...`"""

from podium.cli import main

main()
