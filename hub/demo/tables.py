"""Fixed tables of the demo world: code tables the vendor protocols map, and name variations.

Vendor simulators and adapters may import these to build their own code tables (a vendor's
status code for "CLOSED", its role codes...), so every value the world emits has a mapping.
"""

from __future__ import annotations

# NIBRS offence codes and descriptions the RMS records use.
NIBRS_OFFENSES: dict[str, str] = {
    "09A": "Murder and Nonnegligent Manslaughter",
    "11A": "Rape",
    "11B": "Sodomy",
    "11C": "Sexual Assault With An Object",
    "11D": "Fondling",
    "120": "Robbery",
    "13A": "Aggravated Assault",
    "13B": "Simple Assault",
    "13C": "Intimidation",
    "200": "Arson",
    "220": "Burglary/Breaking and Entering",
    "23C": "Shoplifting",
    "23F": "Theft From Motor Vehicle",
    "23H": "All Other Larceny",
    "240": "Motor Vehicle Theft",
    "250": "Counterfeiting/Forgery",
    "26A": "False Pretenses/Swindle/Confidence Game",
    "290": "Destruction/Damage/Vandalism of Property",
    "35A": "Drug/Narcotic Violations",
    "520": "Weapon Law Violations",
    "90C": "Disorderly Conduct",
    "90D": "Driving Under the Influence",
    "90J": "Trespass of Real Property",
    "90Z": "All Other Offenses",
}

# How often each offence turns up in reports, relative to each other.
NIBRS_FREQUENCIES: dict[str, int] = {
    "09A": 1,
    "11A": 3,
    "11B": 1,
    "11C": 1,
    "11D": 3,
    "120": 10,
    "13A": 25,
    "13B": 60,
    "13C": 15,
    "200": 3,
    "220": 40,
    "23C": 40,
    "23F": 45,
    "23H": 50,
    "240": 30,
    "250": 8,
    "26A": 20,
    "290": 45,
    "35A": 35,
    "520": 12,
    "90C": 20,
    "90D": 30,
    "90J": 15,
    "90Z": 25,
}

# The offences whose victims' identities the law protects (LegalTag.SEX_OFFENSE_VICTIM).
SEX_OFFENSE_CODES: frozenset[str] = frozenset({"11A", "11B", "11C", "11D"})

# CAD call types (code, description); codes are the mixed radio/penal-code style CADs use.
CAD_CALL_TYPES: dict[str, str] = {
    "415": "Disturbance",
    "459": "Burglary",
    "211": "Robbery",
    "242": "Battery",
    "245": "Assault With Deadly Weapon",
    "488": "Petty Theft",
    "594": "Vandalism",
    "10851": "Stolen Vehicle",
    "23152": "Driving Under the Influence",
    "647F": "Drunk in Public",
    "5150": "Mental Health Evaluation",
    "1182": "Traffic Collision - Property Damage",
    "1180": "Traffic Collision - Major Injury",
    "911H": "911 Hang-up",
    "SUSP": "Suspicious Person",
    "ALARM": "Alarm",
    "WELF": "Welfare Check",
    "TS": "Traffic Stop",
}

RMS_STATUSES: tuple[str, ...] = (
    "OPEN",
    "CLOSED",
    "CLEARED BY ARREST",
    "EXCEPTIONALLY CLEARED",
    "UNFOUNDED",
    "INACTIVE",
)

CAD_STATUSES: tuple[str, ...] = (
    "CLOSED",
    "REPORT TAKEN",
    "GONE ON ARRIVAL",
    "ADVISED",
    "UNABLE TO LOCATE",
    "ARREST MADE",
    "CANCELLED",
)

RMS_ROLES: tuple[str, ...] = ("SUSPECT", "ARRESTEE", "VICTIM", "WITNESS", "REPORTING_PARTY")
CAD_ROLES: tuple[str, ...] = ("REPORTING_PARTY", "SUSPECT", "VICTIM", "WITNESS")

CAUTIONS: tuple[str, ...] = (
    "ARMED AND DANGEROUS",
    "VIOLENT TENDENCIES",
    "MENTAL HEALTH HISTORY",
    "ESCAPE RISK",
    "GANG AFFILIATION",
    "SUICIDAL",
    "DIABETIC",
    "KNOWN DRUG USER",
)

NAME_SUFFIXES: tuple[str, ...] = ("JR", "SR", "II", "III")

VEHICLE_COLORS: tuple[str, ...] = (
    "BLACK",
    "WHITE",
    "SILVER",
    "GRAY",
    "BLUE",
    "RED",
    "GREEN",
    "BROWN",
    "GOLD",
    "MAROON",
)

# (make, model, first model year, last model year)
VEHICLE_MODELS: tuple[tuple[str, str, int, int], ...] = (
    ("Toyota", "Camry", 2000, 2025),
    ("Toyota", "Corolla", 2000, 2025),
    ("Toyota", "RAV4", 2002, 2025),
    ("Toyota", "Tacoma", 2000, 2025),
    ("Honda", "Civic", 2000, 2025),
    ("Honda", "Accord", 2000, 2025),
    ("Honda", "CR-V", 2002, 2025),
    ("Ford", "F-150", 2000, 2025),
    ("Ford", "Escape", 2005, 2024),
    ("Ford", "Focus", 2000, 2018),
    ("Ford", "Explorer", 2000, 2025),
    ("Chevrolet", "Silverado", 2000, 2025),
    ("Chevrolet", "Malibu", 2004, 2024),
    ("Chevrolet", "Equinox", 2005, 2025),
    ("Nissan", "Altima", 2000, 2025),
    ("Nissan", "Sentra", 2000, 2025),
    ("Nissan", "Rogue", 2008, 2025),
    ("Hyundai", "Elantra", 2001, 2025),
    ("Hyundai", "Sonata", 2000, 2025),
    ("Kia", "Soul", 2010, 2025),
    ("Subaru", "Outback", 2000, 2025),
    ("Subaru", "Forester", 2000, 2025),
    ("Jeep", "Wrangler", 2000, 2025),
    ("Jeep", "Grand Cherokee", 2000, 2025),
    ("Dodge", "Ram 1500", 2000, 2025),
    ("Volkswagen", "Jetta", 2000, 2025),
    ("Tesla", "Model 3", 2017, 2025),
    ("BMW", "3 Series", 2000, 2025),
    ("Mazda", "CX-5", 2013, 2025),
    ("GMC", "Sierra", 2000, 2025),
)

# Formal given name -> nicknames people are booked or call in under.
NICKNAMES: dict[str, tuple[str, ...]] = {
    "Alexander": ("Alex", "Xander"),
    "Alexandra": ("Alex", "Sandra"),
    "Andrew": ("Andy", "Drew"),
    "Anthony": ("Tony",),
    "Benjamin": ("Ben", "Benny"),
    "Catherine": ("Cathy", "Kate"),
    "Charles": ("Charlie", "Chuck"),
    "Christopher": ("Chris",),
    "Christina": ("Tina", "Chris"),
    "Daniel": ("Dan", "Danny"),
    "David": ("Dave",),
    "Deborah": ("Debbie", "Deb"),
    "Donald": ("Don",),
    "Edward": ("Ed", "Eddie", "Ted"),
    "Elizabeth": ("Liz", "Beth", "Betty"),
    "Gregory": ("Greg",),
    "James": ("Jim", "Jimmy"),
    "Jennifer": ("Jen", "Jenny"),
    "Jessica": ("Jess",),
    "Jonathan": ("Jon",),
    "Jordan": ("Jordy",),
    "Joseph": ("Joe", "Joey"),
    "Joshua": ("Josh",),
    "Katherine": ("Kathy", "Katie", "Kate"),
    "Kenneth": ("Ken", "Kenny"),
    "Kimberly": ("Kim",),
    "Lawrence": ("Larry",),
    "Margaret": ("Maggie", "Peggy"),
    "Matthew": ("Matt",),
    "Michael": ("Mike", "Mikey"),
    "Nicholas": ("Nick",),
    "Patricia": ("Pat", "Patty", "Trish"),
    "Patrick": ("Pat",),
    "Rebecca": ("Becky",),
    "Richard": ("Rick", "Dick", "Richie"),
    "Robert": ("Bob", "Rob", "Bobby"),
    "Ronald": ("Ron", "Ronnie"),
    "Samantha": ("Sam",),
    "Samuel": ("Sam",),
    "Stephanie": ("Steph",),
    "Steven": ("Steve",),
    "Susan": ("Sue",),
    "Thomas": ("Tom", "Tommy"),
    "Timothy": ("Tim",),
    "Victoria": ("Vicky", "Tori"),
    "William": ("Bill", "Will", "Billy"),
    "Zachary": ("Zach",),
}
