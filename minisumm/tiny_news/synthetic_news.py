"""Invented news stories, any number, deterministic from a seed: the offline stand-in for CNN/DailyMail.

    stories(seed, n)  ->  [Story(article, [highlight, ...], facts), ...]     2-4 highlights, one sentence each
    python -m minisumm.tiny_news.synthetic_news --seed 12345 --stories 200 --out fresh.jsonl
                          # new stories as a data file (with their facts) for train.py or evaluate.py --data

Every word is this project's own writing, assembled from templates and seeded random choices: ~1,000
invented towns (a stem and an ending, "Ash" + "combe"), 5,000 people, clubs, companies, numbers and dates.
A story is built like an agency report: a lead sentence with the main facts, supporting sentences (a quote,
figures), background that carries no fact, and *distractors*: sentences with other facts of the same kind
(another town's rainfall, the other match's score, the runner-up's votes). So a good summary has to copy
the right names and numbers out of this article; templates alone cannot score well, and neither can the
first sentences alone, since the order of everything after the lead is shuffled and distractors can come
early.

Each story carries its facts (`Story.facts`): which names, places, numbers and days each highlight states,
which the article states, and which belong to its distractors, so that a summary's facts can be counted
exactly (`minisumm.tiny_news.facts`).

The same generator feeds four things, kept apart by seed and by an explicit check:
- the shipped `sample` dataset (`sample_data/make_sample.py`, stories with highlights and facts);
- `tiny-news` pretraining (`minisumm.tiny_news.pretrain`), which sees articles only: never a highlight and never the
  summary separator, so summarising is learnt by fine-tuning alone, as with GPT-2 and CNN/DailyMail;
- fresh test files from seeds of your own (the command above), to check that a score is no accident of the
  sample's 40 test stories;
- the tests.
`check()` asserts that every name and number of each highlight is in its article, and that no highlight is
one of its sentences word for word.
"""

from __future__ import annotations

import json
import random
import re
import string
from pathlib import Path
from typing import NamedTuple

from minisumm.errors import MinisummError, run_cli
from minisumm.tools.atomic import check_writable, write_text
from minisumm.tools.flags import FlagParser

MIN_WORDS, MAX_WORDS = 80, 200  # the length aimed at; a story's own sentences can take it a little past 200
MAX_FILLER = 4  # generic sentences per story, more only to reach MIN_WORDS: no story is mostly filler

STEMS = ["Ash", "Brack", "Cal", "Dun", "East", "Fen", "Glen", "Hollin", "Kes", "Low", "Mill", "North", "Oak",
         "Penny", "Red", "Rose", "Salt", "Thistle", "Brindle", "Vale", "West", "Yarrow", "Amber", "Cold",
         "Grey", "Lark", "Marrow", "Stone", "Whit", "Elles", "Bram", "Corn", "Dray", "Elm", "Fox", "Hart",
         "Ivy", "King", "Lang", "Moss"]
ENDINGS = ["combe", "ford", "mere", "holm", "wick", "arrow", "cross", "bay", "moor", "brook", "cliff", "haven",
           "water", "thorn", "marsh", "wood", "by", "field", "ley", "ton", "bridge", "dale", "well", "stead"]
REGIONS = ["North Avonmere", "the Harland Valley", "East Calloway", "the Brindle Hills", "West Ardith",
           "Southmere", "the Orran Coast", "Upper Tessel"]
FIRST = ["Amara", "Ben", "Chloé", "Dmitri", "Elena", "Farid", "Grace", "Hiroshi", "Inès", "Jonas", "Kofi",
         "Leila", "Mateo", "Niamh", "Oskar", "Priya", "Rafael", "Sofia", "Tomás", "Ursula", "Wei", "Yusuf",
         "Zoë", "Hannah", "Callum", "Aisha", "Declan", "Maja", "Samuel", "Ruth", "Aaron", "Bea", "Cyrus", "Dana",
         "Emeka", "Freya", "Gustav", "Hana", "Ivan", "Jade", "Karim", "Lucia", "Marcus", "Nadia", "Olu", "Pia",
         "Quentin", "Rosa", "Sven", "Tara", "Uma", "Viktor", "Willa", "Xavier", "Yara", "Zane", "Anton", "Bridget",
         "Colm", "Delia"]
LAST = ["Abbott", "Brennan", "Castillo", "Dubois", "Eriksen", "Fairweather", "Gallagher", "Hartley", "Iqbal",
        "Jansen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "O'Connell", "Patel", "Quinn", "Rossi",
        "Sandoval", "Thornton", "Underwood", "Varga", "Whitlock", "Yilmaz", "Zielinski", "Okafor", "Müller",
        "Núñez", "Achterberg", "Mensah", "Adeyemi", "Bauer", "Chen", "Delgado", "Evans", "Fischer", "Gupta",
        "Holm", "Ibrahim", "Jovanović", "Keane", "Larsen", "Mahler", "Novak", "Ortiz", "Petrov", "Reyes",
        "Silva", "Tanaka", "Ueda", "Vance", "Walsh", "Young", "Zhou", "Aalto", "Byrne", "Costa", "Dalton",
        "Ekström", "Flores", "Grant", "Haddad", "Ito", "Kerr", "Lowe", "Marsh", "Nolan", "Osei", "Price",
        "Rahman", "Stone", "Torres", "Ward", "Ahmed", "Blake", "Cole", "Doyle", "Engel", "Frost", "Hughes"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

# Sentences that fit any story and never carry a highlight's facts; {place} is the story's town.
GENERIC_FILLER = [
    "Residents of {place} said the news had been the main topic of conversation in shops and cafes all week.",
    "Local radio stations reported a steady stream of calls from listeners wanting to share their views.",
    "Several people who spoke to reporters asked not to be named.",
    "Social media posts about the story were shared thousands of times within a few hours.",
    "Officials said a fuller statement would be published on the council website in due course.",
    "It is not the first time {place} has made headlines this year.",
    "Neighbouring communities are expected to watch the outcome closely.",
    "A spokesperson declined to comment further while details were still being confirmed.",
    "Long-time residents of {place} said they could not remember anything quite like it.",
    "The story was first reported by a local newsletter run by volunteers.",
    "Reporters were unable to reach several of those involved for comment.",
    "The details were confirmed in a short statement late in the afternoon.",
    "Opinions in {place} appeared to be divided.",
    "Some residents said they had expected the news for months.",
    "Others said they were still waiting for a clear explanation.",
    "A meeting to discuss the matter is planned at the community centre.",
    "The local newspaper has asked readers to send in their memories and photographs.",
    "Visitors to {place} were largely unaware of the events, according to shopkeepers.",
    "A petition on a related issue has gathered several hundred signatures.",
    "The full figures are expected to be published next month.",
]


# Second references to the story's main person, by surname as news copy does: the name must be copied.
SECOND_REFERENCE = [
    "{surname} is expected to say more at a public meeting next week.",
    "Asked what happens next, {surname} said only that the work would go on.",
    "{surname} thanked everyone who had helped.",
    "Friends describe {surname} as modest about the attention.",
    "{surname} did not respond to further questions.",
]
PEOPLE = ("who", "lead", "boss", "union", "leader", "winner", "head", "teacher", "coach", "scorer")  # the first named


class Pools:
    """The random choices a story draws from, all through one seeded `random.Random`."""

    def __init__(self, r: random.Random):
        self.r = r

    def town(self, *avoid: str) -> str:
        while True:
            name = self.r.choice(STEMS) + self.r.choice(ENDINGS)
            if name not in avoid:
                return name

    def person(self, *avoid: str) -> str:
        while True:
            name = f"{self.r.choice(FIRST)} {self.r.choice(LAST)}"
            if name not in avoid:
                return name

    def count(self, low: int, high: int, *avoid: str) -> str:
        """A whole number written as news copy writes it (53,947), different from every value in `avoid`."""
        while True:
            text = f"{self.r.randint(low, high):,}"
            if text not in avoid:
                return text

    def number(self, low: int, high: int, *avoid: int) -> int:
        while True:
            value = self.r.randint(low, high)
            if value not in avoid:
                return value

    def date(self) -> str:
        return f"{self.r.randint(1, 28)} {self.r.choice(MONTHS)}"


def weather(p: Pools) -> tuple:
    r = p.r
    f = {"town": p.town(), "region": r.choice(REGIONS), "day": r.choice(DAYS), "who": p.person(),
         "next": r.choice(DAYS)}
    f["town2"] = p.town(f["town"])
    kind = r.choice(["rain", "snow", "heat", "wind"])
    if kind == "rain":
        f.update(mm=p.number(35, 140), homes=p.number(6, 180), roads=p.number(2, 19))
        f["mm2"] = p.number(35, 140, f["mm"])
        lead = ["Heavy rain flooded {homes} homes in {town} on {day} after {mm}mm fell in less than a day.",
                "More than {mm}mm of rain fell on {town} on {day}, leaving {homes} homes flooded.",
                "{homes} homes in {town} were flooded on {day} when {mm}mm of rain fell in a few hours."]
        core = ["Emergency crews closed {roads} roads as rivers rose across {region}.",
                "\"We have not seen water this high in a generation,\" said {who}, who leads the council's "
                "flood response team. \"Please stay away from riverbanks until the levels fall.\"",
                "Forecasters expect more rain on {next}, though less than this week's downpour."]
        distract = ["Nearby {town2} escaped with {mm2}mm and no reports of flooding.",
                    "The wettest day on record in {town2} brought {mm2}mm."]
        highlights = ["{mm}mm of rain fell on {town} on {day}, flooding {homes} homes.",
                      "Emergency crews closed {roads} roads across {region}.",
                      "{who} told residents to stay away from riverbanks.",
                      "More rain is expected on {next}."]
    elif kind == "snow":
        f.update(cm=p.number(8, 45), schools=p.number(3, 40), buses=p.number(10, 90))
        f["cm2"] = p.number(8, 45, f["cm"])
        lead = ["Snow {cm}cm deep closed {schools} schools in and around {town} on {day}.",
                "{town} woke to {cm}cm of snow on {day}, and {schools} schools stayed shut."]
        core = ["Bus operators cancelled {buses} services, and gritters worked through the night on the hill "
                "roads of {region}.",
                "\"Our crews have been out since four in the morning,\" said {who}, the council's highways "
                "manager. \"Only travel if you really must.\"",
                "A thaw is forecast from {next}."]
        distract = ["In {town2}, higher up the valley, {cm2}cm was measured.",
                    "The last comparable fall, {cm2}cm, hit {town2} a decade ago."]
        highlights = ["{cm}cm of snow closed {schools} schools around {town} on {day}.",
                      "{buses} bus services were cancelled.",
                      "Highways manager {who} urged people to travel only if they must.",
                      "A thaw should begin on {next}."]
    elif kind == "heat":
        f.update(temp=p.number(33, 41), record=p.number(1911, 2019), calls=p.count(40, 400))
        f.update(temp2=p.number(28, 41, f["temp"]))
        lead = ["{town} recorded {temp}C on {day}, its hottest day since {record}.",
                "Temperatures in {town} reached {temp}C on {day}, beating a record set in {record}."]
        core = ["Ambulance crews in {region} answered {calls} heat-related calls in a single day.",
                "\"Drink water, find shade, and check on elderly neighbours,\" said {who}, a doctor at the "
                "local hospital.",
                "Cooler air is expected to arrive on {next}."]
        distract = ["On the coast at {town2} the thermometer stopped at {temp2}C.",
                    "Last summer's peak in {town2} was {temp2}C."]
        highlights = ["{town} reached {temp}C on {day}, the hottest since {record}.",
                      "Ambulances answered {calls} heat-related calls.",
                      "Doctor {who} urged people to check on elderly neighbours.",
                      "Cooler air is due on {next}."]
    else:
        f.update(mph=p.number(60, 105), trees=p.number(12, 260), homes=p.count(300, 9000))
        f["mph2"] = p.number(50, 105, f["mph"])
        lead = ["Gusts of {mph}mph brought down {trees} trees in {town} on {day}.",
                "A storm with winds of up to {mph}mph swept through {town} on {day}, felling {trees} trees."]
        core = ["About {homes} homes across {region} lost power for several hours.",
                "\"Engineers are working to reconnect everyone as quickly as they safely can,\" said {who} of "
                "the regional power network.",
                "Calmer weather is forecast from {next}."]
        distract = ["Gusts reached {mph2}mph at {town2}, where little damage was reported.",
                    "A similar storm in {town2} two years ago peaked at {mph2}mph."]
        highlights = ["Winds of {mph}mph felled {trees} trees in {town} on {day}.",
                      "About {homes} homes lost power.",
                      "{who} said engineers were reconnecting homes.",
                      "Calmer weather should follow on {next}."]
    background = ["Weather stations in {region} have kept daily records for more than a century.",
                  "Insurance companies said it was too early to estimate the cost of the damage.",
                  "Volunteers handed out hot drinks at the town hall throughout the day."]
    return f, lead, core, distract, background, highlights


def sports(p: Pools) -> tuple:
    r = p.r
    sport = r.choice(["football", "hockey", "netball", "rugby"])
    low, high = {"football": (0, 6), "hockey": (0, 7), "netball": (25, 62), "rugby": (3, 41)}[sport]
    suffix = r.choice(["Rovers", "Athletic", "United", "Rangers", "Harriers", "Wanderers", "Albion"])
    home = p.town()
    win = p.number(low + 2, high)
    f = {"home": f"{home} {suffix}", "away": f"{p.town(home)} Town", "sport": sport, "win": win,
         "lose": p.number(low, win - 1), "day": r.choice(DAYS[4:]), "scorer": p.person(), "minute": p.number(5, 88),
         "coach": p.person(), "place": p.number(1, 6), "crowd": p.count(800, 14000), "next": f"{p.town()} City"}
    f["coach"] = p.person(f["scorer"])
    f["other_a"], f["other_b"] = f"{p.town(home)} Athletic", f"{p.town(home)} Rangers"
    f["o_win"] = p.number(low + 1, high, win)
    f["o_lose"] = p.number(low, f["o_win"] - 1)
    lead = ["{home} beat {away} {win}-{lose} on {day} to move up to number {place} in the {sport} league.",
            "{home} moved to number {place} in the {sport} league after a {win}-{lose} win over {away} on {day}.",
            "A {win}-{lose} {sport} win over {away} on {day} took {home} to number {place} in the league."]
    core = ["{scorer} opened the scoring after {minute} minutes, and the home side never looked back.",
            "A crowd of {crowd} watched the match.",
            "\"The players showed real character today,\" said coach {coach}. \"We take it one game at a time.\"",
            "{home} face {next} next."]
    distract = ["In the day's other match, {other_a} beat {other_b} {o_win}-{o_lose}.",
                "{other_b} lost {o_win}-{o_lose} to {other_a} in the other fixture."]
    highlights = ["{home} beat {away} {win}-{lose} on {day}.",
                  "{scorer} opened the scoring after {minute} minutes.",
                  "The win lifts {home} to number {place} in the league.",
                  "{home} play {next} next."]
    background = ["The two clubs have met more than forty times since the league was founded.",
                  "Ticket prices were held at last season's level for the third year running.",
                  "Rain before kick-off left parts of the pitch heavy."]
    return f, lead, core, distract, background, highlights


def science(p: Pools) -> tuple:
    r = p.r
    topic = r.choice([
        ("bees", "visit {pct}% more flowers in gardens without pesticides"),
        ("river otters", "have returned to {pct}% of the streams they left in the 1980s"),
        ("a new battery material", "keeps {pct}% of its charge after a thousand cycles"),
        ("sleep", "improves memory test scores by {pct}% in teenagers"),
        ("seagrass meadows", "store {pct}% more carbon than scientists had assumed"),
        ("a distant comet", "loses {pct}% of its ice each time it passes the Sun"),
        ("urban foxes", "travel {pct}% further at night than rural ones"),
        ("a common soil fungus", "raises wheat yields by {pct}% in dry years"),
    ])
    town = p.town()
    f = {"topic": topic[0], "town": town, "uni": f"University of {town}", "lead": p.person(), "pct": p.number(12, 87),
         "n": p.count(40, 2400), "journal": r.choice(["Field Studies Letters", "the Journal of Open Science",
                                                      "Applied Discovery", "Natural Systems Review"]),
         "years": p.number(2, 9), "month": r.choice(MONTHS)}
    f["finding"] = topic[1].format(pct=f["pct"])
    f.update(pct2=p.number(3, 60, f["pct"]), uni2=f"University of {p.town()}", rival=p.person(f["lead"]))
    lead = ["Researchers at the {uni} have found that {topic} {finding}.",
            "A study from the {uni} suggests that {topic} {finding}."]
    core = ["The team, led by {lead}, studied {n} samples over {years} years.",
            "The results were published in {journal} in {month}.",
            "\"We were surprised by how clear the effect was,\" said {lead}. \"Now we need to understand why.\""]
    distract = ["An earlier study at the {uni2} had put the figure at {pct2}%.",
                "{rival}, who was not involved, found an effect of only {pct2}% in earlier work."]
    highlights = ["A {uni} study finds that {topic} {finding}.",
                  "The team led by {lead} studied {n} samples over {years} years.",
                  "The work was published in {journal}."]
    background = ["Other groups have reported smaller effects in earlier work.",
                  "The research was paid for by public grants.",
                  "Independent experts said the study should be repeated elsewhere."]
    return f, lead, core, distract, background, highlights


def business(p: Pools) -> tuple:
    r = p.r
    trade = r.choice(["Foods", "Logistics", "Textiles", "Robotics", "Ceramics", "Brewing", "Pharma"])
    f = {"company": f"{p.town()} {trade}", "town": p.town(), "jobs": p.count(20, 900), "money": p.number(3, 180),
         "boss": p.person(), "union": p.person(), "year": r.choice([2025, 2026, 2027, 2028]),
         "pct": p.number(4, 38)}
    f.update(rival=f"{p.town(f['town'])} {r.choice(['Group', 'Holdings', 'Industries'])}",
             jobs2=p.count(20, 900, f["jobs"]), town2=p.town(f["town"]))
    if r.random() < 0.5:
        lead = ["{company} will create {jobs} jobs at a new £{money} million site in {town}.",
                "{company} is to open a £{money} million factory in {town}, bringing {jobs} jobs."]
        core = ["The site is due to open in {year}.",
                "\"{town} has the skills and the transport links we need,\" said chief executive {boss}.",
                "Sales at the company rose {pct}% last year."]
        distract = ["Rival {rival} cut {jobs2} jobs in {town2} last year.",
                    "{rival} opened a smaller site in {town2} with {jobs2} staff."]
        highlights = ["{company} will create {jobs} jobs in {town}.",
                      "The £{money} million site is due to open in {year}.",
                      "Sales rose {pct}% last year, said chief executive {boss}."]
    else:
        lead = ["{company} will close its {town} plant, putting {jobs} jobs at risk.",
                "Up to {jobs} jobs are at risk after {company} said it would shut its plant in {town}."]
        core = ["The company blamed a {pct}% fall in orders and £{money} million of losses.",
                "The plant will close by the end of {year}.",
                "Union representative {union} called the decision \"a hammer blow for the town\"."]
        distract = ["Its other plant, in {town2}, employs {jobs2} people and is not affected.",
                    "{rival} said its {jobs2} workers in {town2} would keep their jobs."]
        highlights = ["{company} will close its {town} plant, risking {jobs} jobs.",
                      "It blamed a {pct}% fall in orders and £{money} million of losses.",
                      "Union representative {union} called it a hammer blow."]
    background = ["The company was founded as a family business more than fifty years ago.",
                  "Shares in the sector have been volatile this year.",
                  "Analysts said energy costs remained the biggest worry for manufacturers."]
    return f, lead, core, distract, background, highlights


def council(p: Pools) -> tuple:
    r = p.r
    yes = p.number(14, 30)
    f = {"plan": r.choice(["a new library", "a network of cycle lanes", "a swimming pool", "480 new homes",
                           "a riverside park", "a bus station", "a sports hall"]),
         "town": p.town(), "yes": yes, "no": p.number(2, yes - 1), "cost": p.number(2, 60), "leader": p.person(),
         "month": r.choice(MONTHS), "day": r.choice(DAYS[:5])}
    f.update(critic=p.person(f["leader"]), town2=p.town(f["town"]), cost2=p.number(2, 60, f["cost"]))
    lead = ["{town} councillors voted {yes} to {no} on {day} to approve {plan}.",
            "Plans for {plan} in {town} were approved on {day} by {yes} votes to {no}."]
    core = ["The project will cost £{cost} million, and work is due to start in {month}.",
            "\"This is an investment in the next generation,\" said council leader {leader}.",
            "Councillor {critic}, who voted against, said the money would be better spent on road repairs."]
    distract = ["A similar scheme in {town2} was dropped last year after its cost rose to £{cost2} million.",
                "Neighbouring {town2} spent £{cost2} million on its own plan."]
    highlights = ["{town} council approved {plan} by {yes} votes to {no}.",
                  "The £{cost} million project should start in {month}.",
                  "Councillor {critic} said the money should go on road repairs."]
    background = ["A public consultation drew hundreds of written responses.",
                  "The council has faced budget pressures for several years.",
                  "The meeting ran late into the evening."]
    return f, lead, core, distract, background, highlights


def transport(p: Pools) -> tuple:
    r = p.r
    town = p.town()
    f = {"town": town, "other": p.town(town), "weeks": p.number(2, 14), "cost": p.number(2, 95),
         "daily": p.count(1200, 42000), "who": p.person(), "month": r.choice(MONTHS), "mins": p.number(8, 35)}
    f.update(mins2=p.number(8, 60, f["mins"]), weeks2=p.number(2, 20, f["weeks"]), town3=p.town(town, f["other"]))
    if r.random() < 0.5:
        lead = ["The bridge between {town} and {other} will close for {weeks} weeks from {month} for repairs.",
                "Drivers face a {weeks}-week closure of the {town} to {other} bridge from {month}."]
        core = ["About {daily} vehicles use the bridge every day, and diversions will add around {mins} "
                "minutes to journeys.",
                "The repairs will cost £{cost} million.",
                "\"We know this is disruptive, but the work cannot wait,\" said {who}, the project engineer."]
        distract = ["The last repairs, in {town3}, took {weeks2} weeks.",
                    "A smaller bridge at {town3} reopened after {weeks2} weeks of work."]
        highlights = ["The {town} to {other} bridge closes for {weeks} weeks from {month}.",
                      "Diversions will add around {mins} minutes for {daily} daily vehicles.",
                      "Project engineer {who} said the £{cost} million work cannot wait."]
    else:
        lead = ["A new rail link between {town} and {other} will open in {month}, cutting the journey to {mins} "
                "minutes.",
                "Trains between {town} and {other} will take just {mins} minutes when a new line opens in {month}."]
        core = ["The £{cost} million line is expected to carry {daily} passengers a day.",
                "\"This changes how people in both towns can live and work,\" said {who}, the rail operator's "
                "director."]
        distract = ["The bus between the two towns takes {mins2} minutes.",
                    "Journeys from {town3} will still take {mins2} minutes."]
        highlights = ["A new rail line links {town} and {other} from {month}.",
                      "The journey will take {mins} minutes.",
                      "The £{cost} million line expects {daily} passengers a day."]
    background = ["Commuter groups have campaigned on the issue for years.",
                  "Traffic on the main roads has grown steadily over the past decade.",
                  "The work is part of a wider regional transport plan."]
    return f, lead, core, distract, background, highlights


def community(p: Pools) -> tuple:
    r = p.r
    f = {"event": r.choice(["a sponsored walk", "a charity concert", "a bake sale marathon", "a fun run",
                            "a 24-hour swim", "a quiz night"]),
         "cause": r.choice(["the children's ward", "the local hospice", "the town food bank",
                            "a mountain rescue team", "the animal shelter"]),
         "town": p.town(), "money": p.count(1200, 98000), "people": p.count(30, 2500), "who": p.person(),
         "age": p.number(9, 94), "day": r.choice(DAYS)}
    f.update(money2=p.count(1200, 98000, f["money"]), town2=p.town(f["town"]))
    lead = ["{event} in {town} raised £{money} for {cause} on {day}.",
            "Organisers say {event} on {day} raised £{money} for {cause} in {town}."]
    core = ["About {people} people took part.",
            "The idea came from {who}, {age}, who said: \"I just wanted to give something back.\"",
            "The money will pay for new equipment and volunteer training."]
    distract = ["Last year's event raised £{money2}.",
                "A similar appeal in {town2} raised £{money2}."]
    highlights = ["{event} in {town} raised £{money} for {cause}.",
                  "About {people} people took part on {day}.",
                  "Organiser {who}, {age}, wanted to give something back."]
    background = ["The charity relies almost entirely on donations.",
                  "Similar events are planned across the region this summer.",
                  "Local businesses donated prizes for a raffle."]
    return f, lead, core, distract, background, highlights


def culture(p: Pools) -> tuple:
    r = p.r
    kind = r.choice(["festival", "exhibition", "book prize"])
    f = {"town": p.town(), "who": p.person(), "visitors": p.count(2000, 85000), "day": r.choice(DAYS),
         "year": p.number(3, 40), "money": p.count(1000, 25000), "month": r.choice(MONTHS)}
    f.update(who2=p.person(f["who"]), visitors2=p.count(2000, 85000, f["visitors"]))
    if kind == "festival":
        lead = ["The {town} music festival drew {visitors} visitors over the weekend, a record in its "
                "{year}-year history."]
        core = ["Director {who} said next year's festival will run from {month}.",
                "\"The atmosphere on {day} night was something special,\" {who} said."]
        distract = ["The previous record, {visitors2}, was set before the festival moved site.",
                    "Headliner {who2} last played the town to {visitors2} people."]
        highlights = ["The {town} music festival drew a record {visitors} visitors.",
                      "Next year's festival will run from {month}, said director {who}."]
    elif kind == "exhibition":
        lead = ["An exhibition of paintings by {who} opens at the {town} gallery on {day}."]
        core = ["The show brings together work from {year} years of painting and runs until {month}.",
                "Organisers expect around {visitors} visitors."]
        distract = ["The gallery's last show, of work by {who2}, drew {visitors2} visitors."]
        highlights = ["Paintings by {who} go on show in {town} on {day}.",
                      "The exhibition runs until {month} and expects {visitors} visitors."]
    else:
        lead = ["{who} has won the {town} book prize and £{money} for a first novel."]
        core = ["The judges read {year} shortlisted books before choosing the winner on {day}.",
                "\"I wrote most of it on the bus to work,\" said {who}."]
        distract = ["Last year's winner was {who2}.", "{who2} was the runner-up."]
        highlights = ["{who} won the {town} book prize and £{money}.",
                      "The judges chose from {year} shortlisted books."]
    background = ["Arts funding in the region has fallen in recent years.",
                  "Tickets for several events sold out within hours.",
                  "Local hotels reported a busy weekend."]
    return f, lead, core, distract, background, highlights


def nature(p: Pools) -> tuple:
    r = p.r
    f = {"animal": r.choice(["a seal pup", "a barn owl", "a young deer", "a hedgehog", "a swan", "a badger"]),
         "town": p.town(), "who": p.person(), "count": p.count(20, 3000), "trees": p.count(500, 20000),
         "day": r.choice(DAYS), "weeks": p.number(2, 10)}
    f.update(trees2=p.count(500, 20000, f["trees"]), town2=p.town(f["town"]))
    if r.random() < 0.5:
        lead = ["Rescuers freed {animal} caught in fishing line near {town} on {day}.",
                "{animal} tangled in fishing line was rescued near {town} on {day}."]
        core = ["The animal will spend {weeks} weeks recovering at a rescue centre before release.",
                "\"Please take your rubbish home with you,\" said volunteer {who}."]
        distract = ["The same team rescued a heron near {town2} last month."]
        highlights = ["Rescuers freed {animal} from fishing line near {town}.",
                      "It will recover for {weeks} weeks before release.",
                      "Volunteer {who} asked people to take rubbish home."]
    else:
        lead = ["Volunteers planted {trees} trees on the edge of {town} on {day}."]
        core = ["In all, {count} people turned out despite the cold.",
                "\"In twenty years this will be a proper wood,\" said organiser {who}."]
        distract = ["A similar effort in {town2} planted {trees2} trees last winter."]
        highlights = ["Volunteers planted {trees} trees near {town} on {day}.",
                      "{count} people took part, said organiser {who}."]
    background = ["Wildlife groups say sightings have increased in recent years.",
                  "The land is owned by a local trust.",
                  "Schools in the area have joined several conservation projects."]
    return f, lead, core, distract, background, highlights


def education(p: Pools) -> tuple:
    r = p.r
    f = {"town": p.town(), "school": f"{p.town()} Academy", "head": p.person(), "pupils": p.count(120, 1600),
         "pct": p.number(51, 99), "teacher": p.person(), "year": p.number(5, 35), "month": r.choice(MONTHS)}
    f.update(pct2=p.number(40, 99, f["pct"]), school2=f"{p.town(f['town'])} High School")
    if r.random() < 0.5:
        lead = ["{school} in {town} has been rated outstanding by inspectors."]
        core = ["The school has {pupils} pupils, and {pct}% of them passed their final exams last year.",
                "\"This belongs to the children and the staff,\" said head teacher {head}."]
        distract = ["At nearby {school2} the pass rate was {pct2}%."]
        highlights = ["Inspectors rated {school} in {town} outstanding.",
                      "{pct}% of its {pupils} pupils passed their final exams.",
                      "Head teacher {head} credited the children and staff."]
    else:
        lead = ["{teacher}, a science teacher at {school}, has won a national teaching award."]
        core = ["{teacher} has taught at the school for {year} years and will receive the award in {month}.",
                "Former pupils wrote letters in support of the nomination."]
        distract = ["A colleague at {school2} was shortlisted last year."]
        highlights = ["{school} science teacher {teacher} wins a national award.",
                      "{teacher} has taught there for {year} years."]
    background = ["Schools across the country face tight budgets.",
                  "Parents said the news was well deserved.",
                  "The school was founded in the nineteenth century."]
    return f, lead, core, distract, background, highlights


def election(p: Pools) -> tuple:
    r = p.r
    votes = p.number(900, 9000)
    f = {"town": p.town(), "winner": p.person(), "votes": f"{votes:,}",
         "votes2": f"{p.number(400, votes - 50):,}", "turnout": p.number(18, 64), "day": r.choice(DAYS[:5]),
         "party": r.choice(["the Green Alliance", "the People's Party", "the Civic League", "Independents"])}
    f["second"] = p.person(f["winner"])
    lead = ["{winner} won the {town} by-election on {day} with {votes} votes.",
            "{winner} of {party} was elected in {town} on {day}, taking {votes} votes."]
    core = ["{second} came second with {votes2} votes.",
            "Turnout was {turnout}%.",
            "\"I will work for every resident, whoever they voted for,\" said {winner}."]
    distract = []
    highlights = ["{winner} won the {town} by-election with {votes} votes.",
                  "Runner-up {second} took {votes2} votes.",
                  "{turnout}% of voters took part."]
    background = ["The seat fell vacant when the previous councillor retired.",
                  "Candidates spent the final week knocking on doors.",
                  "Counting went on past midnight."]
    return f, lead, core, distract, background, highlights


def court(p: Pools) -> tuple:
    r = p.r
    f = {"who": p.person(), "age": p.number(19, 78), "town": p.town(), "fine": p.count(150, 9000),
         "offence": r.choice(["dumping rubbish in a nature reserve", "driving at 70mph past a school",
                              "selling fake concert tickets", "keeping twelve dogs in a flat",
                              "damaging a war memorial"]),
         "court": f"{p.town()} Magistrates' Court", "day": r.choice(DAYS[:5]), "hours": p.number(40, 300)}
    f.update(fine2=p.count(150, 9000, f["fine"]), who2=p.person(f["who"]))
    lead = ["{who}, {age}, of {town}, was fined £{fine} at {court} on {day} for {offence}.",
            "A {town} resident, {who}, {age}, must pay £{fine} for {offence}, {court} ruled on {day}."]
    core = ["{who} was also ordered to do {hours} hours of unpaid work.",
            "The magistrates said the offence had caused real distress to neighbours."]
    distract = ["In a separate case, {who2} was fined £{fine2}.",
                "The maximum fine for the offence is £{fine2}."]
    highlights = ["{who}, {age}, of {town} was fined £{fine} for {offence}.",
                  "{who} must also do {hours} hours of unpaid work."]
    background = ["The case had been adjourned twice.",
                  "Several neighbours attended the hearing.",
                  "The council said it would pursue similar cases."]
    return f, lead, core, distract, background, highlights


CATEGORIES = [weather, sports, science, business, council, transport, community, culture, nature, education,
              election, court]


class Story(NamedTuple):
    """A generated story: its article, its highlights (one sentence each) and the facts it carries.

    `facts` is the generator's ground truth, for fact-level scoring (`minisumm.tiny_news.facts`):
    - `highlights`: for each highlight, the facts it states (names, places, numbers, dates), as written;
    - `article`: every fact of the story that the article states (the highlights' among them);
    - `distractors`: the facts of the distractor sentences (another town's rainfall, the other match's
      score): true of the article, wrong in its summary.
    """
    article: str
    highlights: list[str]
    facts: dict


def story(r: random.Random, restate: bool = False) -> Story:
    """One story: the lead first, then its first supporting sentence, then everything else (supporting
    facts, distractors, background, filler) in a shuffled order.

    `restate=True` (the pretraining text only) follows the article with a second report of the same event,
    written anew from the same facts (another wording of the lead, another order, other filler), as a later
    edition restates an agency story: every name and number of the first report comes again. The draws for
    the first report and the highlights are the same either way, so the shipped sample never changes.
    """
    facts, lead, core, distract, background, highlights = r.choice(CATEGORIES)(Pools(r))
    article, lead_template, distract_templates, background_templates = _report(r, facts, lead, core, distract,
                                                                               background)
    keep = r.randint(max(2, len(highlights) - 1), len(highlights))  # the last highlights are the least important
    summary = [_capitalise(t.format(**facts)) for t in highlights[:keep]]
    text = " ".join(article)
    if restate:
        text += " " + " ".join(_report(r, facts, lead, core, distract, background)[0])
    main_keys = {key for t in [lead_template, *core, *background_templates, *highlights] for key in _keys(t)}
    distract_keys = {key for t in distract_templates for key in _keys(t)} - main_keys
    stated = _unique(v for key in sorted(main_keys | {"town"} & facts.keys()) for v in fact_values(facts[key])
                     if v in text)
    ground_truth = {  # a value that is both (the other match's 2 goals, this one's 2 conceded) is no distractor
        "highlights": [_unique(v for key in _keys(t) for v in fact_values(facts[key])) for t in highlights[:keep]],
        "article": stated,
        "distractors": _unique(v for key in sorted(distract_keys) for v in fact_values(facts[key])
                               if v in text and v not in stated),
    }
    return Story(text, summary, ground_truth)


def _report(r: random.Random, facts: dict, lead, core, distract, background) -> tuple:
    """One written report of a story's facts: `(sentences, lead template, distractor and background templates)`."""
    lead_template = r.choice(lead)
    article = [lead_template.format(**facts)]
    body = [t.format(**facts) for t in core]
    article += body[:1]
    distract_templates = r.sample(distract, min(len(distract), r.randint(1, 2)))
    background_templates = r.sample(background, r.randint(1, len(background)))
    rest = body[1:] + [t.format(**facts) for t in distract_templates]
    rest += [t.format(**facts) for t in background_templates]
    text = " ".join(article + rest)
    main_person = next((facts[key] for key in PEOPLE if facts.get(key) and facts[key] in text), None)
    if main_person is not None:
        rest += [t.format(surname=main_person.split(" ")[-1]) for t in r.sample(SECOND_REFERENCE, r.randint(1, 2))]
    r.shuffle(rest)
    article += rest
    place = facts["town"] if "town" in facts else facts["home"].split(" ")[0]
    target = r.randint(MIN_WORDS, MAX_WORDS)
    used = 0
    for filler in r.sample(GENERIC_FILLER, len(GENERIC_FILLER)):  # to the target length, and never under MIN
        words = len(" ".join(article).split())
        if words >= MIN_WORDS and (words >= target or used == MAX_FILLER):
            break
        if words + len(filler.split()) <= MAX_WORDS:
            article.insert(r.randint(2, len(article)), filler.format(place=place))
            used += 1
    article = [_capitalise(sentence) for sentence in article]
    if r.random() < 0.3:  # a dateline, as many agency stories open
        article[0] = f"{place.upper()} (Minisumm News) -- {article[0]}"
    return article, lead_template, distract_templates, background_templates


def fact_values(value) -> list[str]:
    """The facts a filled-in value states: a number, a name or a date (without a leading "the"), or the
    numbers inside a phrase ("visit 48% more flowers" states 48; "a new library" states none)."""
    if isinstance(value, int):
        return [str(value)]
    name = value[4:] if value.startswith("the ") else value
    if name[:1].isupper() or re.fullmatch(r"\d[\d,]*", name):
        return [name]
    return re.findall(r"\d[\d,]*\d|\d", value)


def _keys(template: str) -> list[str]:
    """The fields of a template, in order: "{town} on {day}" -> ["town", "day"]."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def _unique(values) -> list[str]:
    return list(dict.fromkeys(values))


def stories(seed: int, n: int, exclude: set[str] = frozenset(), restate: bool = False) -> list[Story]:
    """`n` distinct stories from `seed`, none of whose articles is in `exclude`; checked as they are made."""
    r = random.Random(seed)
    out, seen = [], set(exclude)
    while len(out) < n:
        generated = story(r, restate)
        if generated.article in seen:
            continue
        seen.add(generated.article)
        check(generated.article, generated.highlights, generated.facts)
        out.append(generated)
    return out


def _capitalise(sentence: str) -> str:
    return sentence[0].upper() + sentence[1:]


def check(article: str, highlights: list[str], facts: dict | None = None) -> None:
    """Every number and every capitalised word (but a highlight's first) of the highlights is in the article,
    and no highlight is in it word for word: a highlight is a rewording, never a copied sentence. With the
    story's `facts`: every fact of a highlight is a fact of the article, and no distractor is one."""
    words = len(article.split())
    assert MIN_WORDS <= words <= 2 * (MAX_WORDS + 40), (words, article)  # two reports with restate=True
    assert 2 <= len(highlights) <= 4, highlights
    for sentence in highlights:
        assert sentence not in article, (sentence, article)
        for match in re.finditer(r"\d[\d,.]*|\b[A-Z][\w'’]+", sentence):
            if match.start() > 0 or match.group()[0].isdigit():
                assert match.group().rstrip(".,") in article, (match.group(), sentence, article)
    if facts is not None:
        assert len(facts["highlights"]) == len(highlights), facts
        for sentence, stated in zip(highlights, facts["highlights"]):
            assert stated and all(fact in sentence and fact in facts["article"] for fact in stated), (sentence, facts)
        assert not set(facts["distractors"]) & set(facts["article"]), facts


def main(argv=None, prog: str = "python -m minisumm.tiny_news.synthetic_news") -> int:
    """Write `--stories` new stories from `--seed` as a .jsonl data file (id, article, highlights, facts)."""
    p = FlagParser(prog=prog, description="Write invented news stories, with their facts, to a .jsonl file.")
    p.add_argument("--seed", type=int, required=True, help="Seed of the stories (the sample uses 20240607).")
    p.add_argument("--stories", type=int, default=200, help="How many stories. (default: %(default)r)")
    p.add_argument("--out", required=True, help="The .jsonl file to write.")
    args = p.parse_args(argv)
    if args.stories < 1:
        raise MinisummError(f"--stories must be at least 1; got {args.stories}.")
    out = Path(args.out)
    check_writable(out.parent if str(out.parent) else Path("."), "--out")
    rows = [{"id": f"seed{args.seed}-{i:05d}", "article": s.article, "highlights": "\n".join(s.highlights),
             "facts": s.facts} for i, s in enumerate(stories(args.seed, args.stories))]
    write_text(out, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    print(f"Wrote {len(rows)} stories (seed {args.seed}) to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
