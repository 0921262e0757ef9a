"""The words the skills pages and tasks are made of: field labels by kind, option lists, page
themes and distractors. None of it comes from MiniWoB++ or the bundled sites (they stay the
measurements), and every list is long enough that a seed rarely meets the same page twice.
"""

from __future__ import annotations

import random
import unicodedata

GIVEN = ("Amara", "Bruno", "Chen", "Dalia", "Emeka", "Farah", "Goran", "Hana", "Idris", "Jana",
         "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tomas",
         "Uma", "Viktor", "Wen", "Yara", "Zoltan")
FAMILY = ("Abiodun", "Bergström", "Costa", "Dubois", "Eriksen", "Fonseca", "Gallagher", "Haddad",
          "Ivanova", "Jansen", "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov",
          "Quispe", "Rossi", "Sato", "Tanaka", "Urquhart", "Varga", "Weber", "Yilmaz", "Zhou")
TOWNS = ("Aarhus", "Bergen", "Cork", "Dresden", "Eindhoven", "Florence", "Ghent", "Haarlem",
         "Innsbruck", "Krakow", "Leeds", "Malmo", "Nantes", "Oslo", "Pisa", "Riga", "Salzburg",
         "Tallinn", "Utrecht", "Valencia", "Warsaw", "Zagreb")
COMPANIES = ("Northwind Labs", "Blue Heron Ltd", "Copperleaf", "Driftwood Studio", "Evergreen Co",
             "Foxglove Systems", "Granite Works", "Harbour Lights", "Ironbark", "Juniper & Sons")
PHRASES = ("Running late today", "Back on Monday", "Please leave it at the door",
           "Call me after six", "Window seat if possible", "No nuts please",
           "Gift wrap the order", "Ring the bell twice", "Working from home",
           "On holiday until the 20th", "Need an invoice", "Meeting moved to noon")
WORDS = ("lamp", "kettle", "bicycle", "umbrella", "headphones", "garden chair", "tent",
         "printer paper", "yoga mat", "coffee beans", "winter boots", "desk fan")

# Field kinds: labels a page may give the field, and how a value is drawn for it.
TEXT_LABELS = {
    "name": ("Full name", "Name", "Your name", "Display name", "Contact name"),
    "first": ("First name", "Given name"),
    "last": ("Last name", "Surname", "Family name"),
    "town": ("City", "Town", "Home town"),
    "company": ("Company", "Organisation", "Employer"),
    "subject": ("Subject", "Title", "Headline"),
    "username": ("Username", "User name", "Login name"),
}
EMAIL_LABELS = ("Email", "Email address", "E-mail", "Work email")
PHONE_LABELS = ("Phone", "Mobile number", "Telephone")
NUMBER_LABELS = ("Quantity", "Guests", "Number of seats", "Age", "Copies")
DATE_LABELS = ("Date", "Start date", "Due date", "Arrival date")
TIME_LABELS = ("Time", "Start time", "Arrival time")
PASSWORD_LABELS = ("Password", "New password")
AREA_LABELS = ("Message", "Comment", "Notes", "Delivery instructions")
EDITABLE_LABELS = ("Status", "Note to self")
SEARCH_LABELS = ("Search", "Search the catalogue", "Find")

LISTS = {
    "Country": ("Austria", "Belgium", "Croatia", "Denmark", "Estonia", "Finland", "Greece",
                "Hungary", "Ireland", "Latvia"),
    "Size": ("Small", "Medium", "Large", "Extra large"),
    "Plan": ("Free", "Basic", "Pro", "Team", "Enterprise"),
    "Colour": ("Red", "Orange", "Green", "Navy", "Grey", "Purple"),
    "Priority": ("Low", "Normal", "High", "Urgent"),
    "Month": ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"),
    "Time zone": ("UTC", "Europe/Lisbon", "Europe/Berlin", "Asia/Tokyo", "America/Chicago"),
}
GROUPS = {
    "Delivery": ("Standard", "Express", "Pick up in store"),
    "Payment method": ("Card", "Bank transfer", "Invoice"),
    "Theme": ("Light", "Dark", "System"),
    "Frequency": ("Daily", "Weekly", "Monthly", "Never"),
    "Contact me by": ("Email", "Phone", "Post"),
}
SWITCHES = ("Newsletter", "Remember me", "Email notifications", "Dark mode", "Two-step sign-in",
            "Show my profile publicly", "Send me a copy", "Auto-save", "Accept the terms",
            "Weekly digest")

# Page themes: a title, headings, and the labels its submit button may carry.
THEMES = (
    ("Edit profile", ("Save", "Save profile", "Update")),
    ("Contact us", ("Send", "Send message", "Submit")),
    ("Create your account", ("Sign up", "Create account", "Continue")),
    ("Settings", ("Save changes", "Apply", "Save")),
    ("Book a table", ("Book", "Reserve", "Confirm")),
    ("Checkout", ("Place order", "Continue", "Pay now")),
    ("New ticket", ("Submit", "Create ticket", "Send")),
    ("Event registration", ("Register", "Sign me up", "Submit")),
)
NAV = ("Home", "About", "Help", "Pricing", "Blog", "Dashboard", "Account", "Products", "Docs")
FOOTER = ("Privacy", "Terms", "Contact", "Careers", "Status", "Accessibility")
DISTRACTORS = ("Cancel", "Reset", "Save draft", "Back", "Preview", "Clear")


def person(rng: random.Random) -> str:
    return f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"


def email(rng: random.Random) -> str:
    local = f"{rng.choice(GIVEN)}.{rng.choice(FAMILY)}".lower()
    return unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode() + \
        "@mail.example"
