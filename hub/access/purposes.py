"""Purposes of use: why a query is made. Every data query states one (``X-Purpose``).

The letter codes follow the FBI III purpose codes that agencies already use; the ``ALPR-*`` codes
are the purposes ALPR laws and policies name (e.g. California Civil Code 1798.90.51 requires an
ALPR usage policy stating authorised purposes).
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.errors import InvalidPurpose, PurposeRequired


@dataclass(frozen=True, slots=True)
class Purpose:
    code: str
    title: str
    description: str
    # Criminal-justice purposes may see investigative data when policy also allows it.
    criminal_justice: bool
    # A search for this purpose must name its case (X-Case-Number); the audit review reports
    # one that does not (hub.oversight).
    case_number_required: bool = False


PURPOSES: dict[str, Purpose] = {
    p.code: p
    for p in (
        Purpose(
            "C",
            "Criminal justice",
            "Detection, apprehension, detention, prosecution, "
            "adjudication or correctional supervision of accused persons or offenders.",
            True,
        ),
        Purpose(
            "J",
            "Criminal justice employment",
            "Background check of an applicant for employment by a criminal-justice agency.",
            False,
        ),
        Purpose(
            "F",
            "Firearms",
            "Issuance of firearm-related permits and licences, and return of firearms.",
            False,
        ),
        Purpose(
            "D",
            "Domestic violence and stalking",
            "Use by civil or criminal courts in domestic-violence and stalking cases.",
            False,
        ),
        Purpose("H", "Public housing", "Screening of applicants for public housing.", False),
        Purpose(
            "A",
            "Administrative",
            "Record maintenance by the agency that owns the record "
            "(audits, corrections, expungement).",
            False,
        ),
        Purpose(
            "X",
            "Exigent circumstances",
            "An emergency in which a fingerprint-based check "
            "cannot be made first (e.g. child placement in an emergency).",
            True,
        ),
        Purpose(
            "ALPR-INV",
            "ALPR investigation",
            "Search of plate-read history in an active criminal investigation with a case number.",
            True,
            case_number_required=True,
        ),
        Purpose(
            "ALPR-HOT",
            "ALPR hot list",
            "Check of a plate against a hot list (stolen vehicle, wanted person, AMBER alert).",
            True,
        ),
    )
}


def purpose_of(code: str | None) -> Purpose | None:
    """The purpose a header value names exactly (codes are case-sensitive: ``c`` is not ``C``);
    None when the header is absent or empty; InvalidPurpose when it names no purpose."""
    if code is None or not code.strip():
        return None
    purpose = PURPOSES.get(code)
    if purpose is None:
        known = ", ".join(PURPOSES)
        raise InvalidPurpose(
            f"unknown purpose code {code[:16]!r}; known codes (case-sensitive): {known}"
        )
    return purpose


def require_purpose(code: str | None) -> Purpose:
    """The purpose for a header value: PurposeRequired if absent, InvalidPurpose if unknown."""
    purpose = purpose_of(code)
    if purpose is None:
        raise PurposeRequired("this query needs a purpose of use: send the X-Purpose header")
    return purpose
