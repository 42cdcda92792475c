"""Codes used on the wire (DESIGN.md section 1). Extend as needed; never rename."""

from __future__ import annotations

from enum import StrEnum


class Department(StrEnum):
    SC = "SC"  # State Council: approves
    JILIN = "JILIN"  # Jilin Provincial People's Government: implements
    CHANGCHUN = "CHANGCHUN"  # Changchun Municipal People's Government
    NDRC = "NDRC"  # National Development and Reform Commission: supervises, evaluates
    MOFCOM = "MOFCOM"
    MOST = "MOST"
    MIIT = "MIIT"
    MEE = "MEE"
    MOFA = "MOFA"
    MOF = "MOF"
    GACC = "GACC"
    NAO = "NAO"  # National Audit Office: reads the trail


class CooperationField(StrEnum):
    INDUSTRY = "industry"
    SCIENCE_TECHNOLOGY = "science_technology"
    TRADE = "trade"
    HUMANITIES = "humanities"
    ENVIRONMENT = "environment"
    INSTITUTIONAL_INNOVATION = "institutional_innovation"
    BUSINESS_ENVIRONMENT = "business_environment"
    OPENING_UP = "opening_up"


class Role(StrEnum):
    IMPLEMENTER = "implementer"
    SUPPORTER = "supporter"
    SUPERVISOR = "supervisor"
    APPROVER = "approver"
    AUDITOR = "auditor"
    ADMIN = "admin"


class TaskHealth(StrEnum):
    """Whether a task will be done on time, by the rule in docs/health.md."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    LATE = "late"
    DONE = "done"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    MAJOR = "major"


class ApprovalKind(StrEnum):
    POLICY = "policy"
    MAJOR_PROJECT = "major_project"


class Rating(StrEnum):
    EXCELLENT = "excellent"
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"
