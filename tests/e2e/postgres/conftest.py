# The PostgreSQL outage suite shares the e2e helpers one level up.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
