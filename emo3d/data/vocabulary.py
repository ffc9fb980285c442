"""The offline description generator's word lists, written for emo3d (no third-party lexicon).

One owner for the words ``textgen`` writes with and that other code may reuse (e.g. to train a reader):

* ``emotion_words(e)`` -> :class:`EmotionWords`: synonyms of one emotion (adjectives, nouns, verbs),
  body/posture clauses and context clauses (what happened) for ``schema.EMOTIONS``;
* ``INTENSITY_ADVERBS`` / ``INTENSITY_ADJECTIVES``: slight, moderate and strong intensity words;
* subject words: ``ROLES`` (occupations and roles per age group), ``LOOKS`` (visible traits),
  ``CLOTHING`` clauses, and where and when the face is seen (``SCENES``; ``PLACES`` with
  ``PLACE_ADJECTIVES``, "in a cluttered workshop"; ``TIMES``) and what the person holds (``HELD``,
  ``OBJECTS``), shared by every emotion;
* ``STOPWORDS``: English function words, dropped when counting content words as the paper's Table 3 does
  (:mod:`emo3d.data.stats`).

Facial-feature phrases per region (brows, eyes, lids, cheeks, nose, mouth, lips, jaw, chin) live in
``emo3d.data.facs.CUES`` beside the action units they add, so the FACS prior reads back what the text says.
The emotion words were chosen so each names its emotion for an ordinary reader; a word sits under one
emotion only. ``{p}`` in a clause is the subject's possessive (her / his / their).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, Tuple

from emo3d.errors import InvalidInputError
from emo3d.schema import EMOTIONS

__all__ = ["EmotionWords", "emotion_words", "INTENSITY_ADVERBS", "INTENSITY_ADJECTIVES", "NEUTRAL_ADVERBS",
           "ROLES", "LOOKS", "CLOTHING", "SCENES", "PLACES", "PLACE_ADJECTIVES", "TIMES", "HELD",
           "OBJECTS", "STOPWORDS"]


def _words(s: str) -> Tuple[str, ...]:
    """Whitespace-separated words; ``_`` stands for a space inside one entry ("taken_aback")."""
    return tuple(w.replace("_", " ") for w in s.split())


def _clauses(s: str) -> Tuple[str, ...]:
    """One entry per non-empty line."""
    return tuple(line.strip() for line in s.strip().splitlines() if line.strip())


@dataclass(frozen=True)
class EmotionWords:
    """The words of one emotion: ``adjectives`` ("furious"), ``nouns`` ("fury"), ``verbs`` (third person,
    "glowers"), ``body`` clauses ("{p} fists clenched") and ``contexts`` ("after being cut off in traffic")."""
    emotion: str
    adjectives: Tuple[str, ...]
    nouns: Tuple[str, ...]
    verbs: Tuple[str, ...]
    body: Tuple[str, ...]
    contexts: Tuple[str, ...]

    def __post_init__(self):
        for name in ("adjectives", "nouns", "verbs", "body", "contexts"):
            items = getattr(self, name)
            if not items or len(set(items)) != len(items):
                raise InvalidInputError(f"EmotionWords({self.emotion!r}).{name} must be non-empty and "
                                        f"without repeats")

    @property
    def synonyms(self) -> Tuple[str, ...]:
        """The emotion-naming words (nouns, then adjectives): what a reader can learn the emotion from."""
        return self.nouns + self.adjectives


INTENSITY_ADVERBS: Tuple[Tuple[str, ...], ...] = (
    _words("slightly faintly mildly a_little somewhat quietly subtly vaguely barely lightly gently "
           "softly a_touch a_bit marginally just_a_little"),
    _words("clearly visibly noticeably plainly openly evidently obviously rather quite fairly "
           "distinctly decidedly genuinely frankly unmistakably"),
    _words("deeply intensely utterly overwhelmingly thoroughly completely fiercely extremely profoundly "
           "wildly tremendously immensely desperately violently absolutely incredibly"),
)
INTENSITY_ADJECTIVES: Tuple[Tuple[str, ...], ...] = (
    _words("faint mild subtle quiet slight muted gentle restrained fleeting delicate hesitant "
           "tentative understated passing"),
    _words("clear evident obvious visible open plain unmistakable genuine marked noticeable distinct "
           "honest undisguised palpable"),
    _words("intense overwhelming raw profound sheer fierce utter powerful extreme unbridled consuming "
           "boundless towering crushing blistering uncontainable"),
)
NEUTRAL_ADVERBS = _words("quietly perfectly entirely calmly completely serenely steadily evenly")

_ADJ = {
    "neutral": "calm composed impassive expressionless blank placid neutral serene unreadable still unbothered "
               "indifferent detached relaxed pensive thoughtful attentive collected poised steady reserved "
               "level-headed unmoved stoic deadpan matter-of-fact even-tempered unruffled unflappable "
               "contemplative reflective absorbed focused observant patient sober businesslike tranquil "
               "measured inscrutable undisturbed nonchalant unperturbed dispassionate self-possessed "
               "unemotional restrained expectant watchful",
    "happiness": "joyful happy cheerful delighted elated glad jubilant radiant merry amused pleased content "
                 "ecstatic gleeful blissful beaming overjoyed thrilled euphoric exuberant buoyant chipper "
                 "sunny upbeat lighthearted carefree jovial jolly mirthful exhilarated rapturous giddy tickled "
                 "gratified contented satisfied triumphant exultant enchanted charmed playful bubbly "
                 "glowing heartened uplifted blithe cheery genial optimistic grateful relieved elevated "
                 "smiling grinning laughing",
    "surprise": "surprised astonished amazed stunned startled shocked dumbfounded astounded flabbergasted "
                "bewildered awestruck speechless thunderstruck agog incredulous gobsmacked staggered "
                "taken_aback dazed nonplussed floored confounded baffled mystified disbelieving electrified "
                "jolted awed spellbound transfixed wonderstruck blindsided stupefied stunned_silent "
                "caught_off_guard",
    "sadness": "sad sorrowful melancholy gloomy mournful miserable heartbroken despondent tearful dejected "
               "forlorn grieving wistful downcast crestfallen disconsolate desolate woeful glum morose doleful "
               "lugubrious dispirited disheartened despairing anguished bereft inconsolable weepy downhearted "
               "heavy-hearted lonely wretched somber regretful hurt wounded defeated discouraged hopeless "
               "brokenhearted careworn troubled dismal mopey unhappy blue",
    "anger": "angry furious enraged irate livid indignant resentful hostile incensed irritated annoyed fuming "
             "seething wrathful infuriated outraged exasperated cross vexed aggravated irked riled provoked "
             "bristling belligerent combative heated hot-tempered frustrated agitated incandescent apoplectic "
             "ireful testy snappish stormy thunderous menacing vengeful defiant truculent glowering "
             "embittered mad",
    "disgust": "disgusted revolted repulsed sickened nauseated appalled queasy repelled offended grossed_out "
               "nauseous squeamish put_off affronted scandalized galled displeased bilious gagging "
               "turned_off sick_to_the_stomach green_around_the_gills revulsed unsettled distasteful "
               "scandalised",
    "fear": "afraid frightened terrified scared anxious panicked horrified nervous fearful alarmed petrified "
            "uneasy apprehensive jittery jumpy skittish timid spooked shaken trembling panicky distraught "
            "aghast fretful worried tense paranoid terror-stricken horror-struck intimidated insecure "
            "cowering wary edgy rattled unnerved daunted hysterical haunted hunted",
    "contempt": "contemptuous scornful disdainful haughty arrogant smug condescending dismissive derisive "
                "sneering superior mocking sardonic supercilious patronizing snide sarcastic cynical snobbish "
                "imperious aloof lofty self-satisfied scoffing jeering taunting belittling disparaging "
                "withering unimpressed sniffy snooty uppity insolent disrespectful derisory smirking",
}
_NOUN = {
    "neutral": "calm composure indifference neutrality stillness detachment reserve ease equanimity serenity "
               "tranquility poise placidity impassivity restraint steadiness contemplation concentration "
               "attentiveness quietude patience focus self-possession thoughtfulness",
    "happiness": "joy happiness delight glee bliss cheer elation contentment amusement gladness jubilation "
                 "euphoria exhilaration merriment mirth rapture exuberance gaiety jollity joviality pleasure "
                 "satisfaction gratification triumph exultation cheerfulness lightheartedness buoyancy "
                 "ecstasy enchantment felicity playfulness radiance relief gratitude high_spirits",
    "surprise": "surprise astonishment amazement shock disbelief bewilderment awe wonder incredulity "
                "stupefaction wonderment bafflement perplexity puzzlement startlement jolt marvel "
                "speechlessness",
    "sadness": "sadness sorrow grief melancholy despair misery heartache gloom anguish dejection woe despondency "
               "desolation heartbreak mourning lament regret loneliness longing yearning hopelessness "
               "unhappiness bereavement wistfulness hurt dolefulness disappointment dismay",
    "anger": "anger fury rage wrath outrage indignation resentment hostility irritation annoyance exasperation "
             "frustration ire vexation animosity aggression antagonism bitterness spite temper agitation "
             "belligerence displeasure umbrage vehemence ferocity",
    "disgust": "disgust revulsion repulsion distaste loathing nausea aversion abhorrence repugnance queasiness "
               "squeamishness detestation odium antipathy sickness grossness disapproval",
    "fear": "fear terror dread panic anxiety alarm horror fright apprehension trepidation unease nervousness "
            "worry foreboding disquiet angst jitters hysteria distress timidity",
    "contempt": "contempt scorn disdain derision mockery condescension arrogance superiority haughtiness "
                "smugness sarcasm cynicism snobbery insolence disrespect ridicule contemptuousness loftiness "
                "superciliousness dismissiveness",
}
_VERB = {
    "neutral": """waits
listens
watches
observes
ponders
considers the question
looks on
gazes ahead
studies the scene
pauses
reflects
sits quietly
stands still
takes notes
reads on""",
    "happiness": """beams
grins
laughs
chuckles
giggles
glows
brightens
lights up
chortles
rejoices
cracks a grin
bursts out laughing
whoops with delight
hums happily
cheers""",
    "surprise": """gasps
gapes
blinks twice
startles
does a double take
stares
jumps back
freezes mid-step
marvels
gawks
lets out a cry
claps a hand over {p} mouth
stops short
reels
blurts out a question""",
    "sadness": """weeps
sighs
sobs
sniffles
mourns
broods
sulks
stares at the floor
mopes
whimpers
grieves
blinks back tears
fights back tears
wipes away a tear
sinks into a chair""",
    "anger": """glowers
fumes
seethes
scowls
bristles
snarls
growls
grits {p} teeth
rages
storms about
snaps back
shouts
slams a fist on the table
jabs a finger
bangs the door""",
    "disgust": """recoils
gags
grimaces
winces
retches
shudders
turns away
pinches {p} nose
pulls back
wrinkles {p} nose
pushes the plate away
covers {p} mouth
spits
holds {p} breath
steps back""",
    "fear": """cowers
flinches
trembles
shudders in fear
recoils in fright
freezes
quakes
shrinks back
backs away
shivers
quivers
clutches {p} chest
hides behind {p} hands
edges toward the door
holds {p} breath in fear""",
    "contempt": """sneers
scoffs
smirks
sniffs
snorts
rolls {p} eyes
jeers
looks down {p} nose
mocks
shakes {p} head slowly
belittles everyone
tuts
waves the idea away
chuckles coldly
raises a single eyebrow""",
}
_BODY = {
    "neutral": """{p} arms resting at {p} sides
{p} hands folded in {p} lap
{p} shoulders level and relaxed
{p} head held straight
{p} posture upright but easy
{p} weight shifted onto one leg
{p} hands in {p} pockets
{p} chin level
breathing slowly and evenly
{p} fingers loosely laced
leaning against the wall
{p} legs crossed at the ankle
{p} hands resting on the desk
{p} gaze fixed on the horizon
sitting perfectly upright""",
    "happiness": """{p} shoulders loose and relaxed
{p} arms flung wide
{p} hands clasped together in delight
{p} head thrown back
bouncing on {p} toes
clapping {p} hands
leaning forward eagerly
with a spring in {p} step
{p} cheeks flushed pink
{p} whole body shaking with laughter
{p} head tilted playfully
pumping a fist in the air
twirling around
{p} arms wrapped around a friend
waving both hands""",
    "surprise": """{p} hands flying up
{p} head jerking back
{p} body frozen in place
one hand pressed to {p} chest
{p} fingers spread wide
{p} shoulders lifted
stepping back abruptly
{p} head tilted in disbelief
dropping {p} keys
{p} hands raised to {p} cheeks
leaning in for a closer look
{p} coffee cup halfway to {p} lips
{p} eyebrows and shoulders rising together
rooted to the spot
turning sharply toward the noise""",
    "sadness": """{p} shoulders slumped
{p} head bowed
{p} arms wrapped around {p} knees
{p} hands limp in {p} lap
hunched over the table
{p} back curved
{p} chin resting on {p} chest
{p} feet dragging
curled up on the sofa
clutching a crumpled photograph
{p} hands covering {p} face
leaning heavily against the window
{p} body sagging
{p} fingers twisting a damp tissue
sitting alone on the stairs""",
    "anger": """{p} fists clenched
{p} shoulders squared
{p} arms rigid at {p} sides
leaning forward aggressively
{p} chest heaving
{p} knuckles white
jabbing a finger forward
{p} neck veins standing out
{p} hands gripping the table edge
pacing back and forth
{p} whole body tense
{p} face flushed red
slamming the door behind {p}
{p} arms crossed tightly
standing toe to toe with a rival""",
    "disgust": """{p} head pulled back
{p} body turned away
one hand raised as if to ward something off
holding the object at arm's length
{p} shoulders hunched in revulsion
leaning away from the smell
{p} hand clamped over {p} mouth
{p} tongue pressed against {p} teeth
pushing the dish away
{p} stomach visibly churning
stepping around the puddle
{p} fingers pinching {p} nose
{p} torso twisting away
holding a soggy sandwich
lifting a foot off the sticky floor""",
    "fear": """{p} hands trembling
{p} back pressed against the wall
{p} shoulders drawn up
{p} arms raised defensively
crouching low
{p} body rigid
clutching {p} bag tightly
{p} knees shaking
glancing over {p} shoulder
{p} breath coming in short gasps
{p} fingers digging into the armrest
edging backwards
hiding behind a door
{p} palms sweaty
huddled in a corner""",
    "contempt": """{p} arms folded
{p} chin tilted upward
{p} head cocked to one side
leaning back in {p} chair
{p} hand waving dismissively
{p} shoulders shrugging
looking down from {p} full height
{p} weight on one hip
idly examining {p} fingernails
turning half away
{p} body angled away
drumming {p} fingers impatiently
{p} hands in {p} pockets with a slouch
tapping {p} foot
leaning on the doorframe""",
}
_CONTEXT = {
    "neutral": """while waiting for the bus
during a routine meeting
while listening to a lecture
as the train rolls through the countryside
while reading the morning newspaper
on an ordinary afternoon
while queueing at the post office
while posing for a passport photograph
while sorting through paperwork
as the kettle boils
during a quiet commute
while waiting for an elevator
as the committee reviews the budget
while scanning a grocery list
during a routine check-up""",
    "happiness": """after hearing the good news
as friends arrive with a birthday cake
while opening a long-awaited letter
at a surprise reunion with an old friend
after winning the championship final
while watching fireworks over the harbour
after landing a dream job
while reading a hilarious comic
as grandchildren tumble into the room
on graduation morning
after a marriage proposal
while splashing through warm ocean waves
at the sight of freshly baked cookies
while listening to a favourite song
as the crowd cheers""",
    "surprise": """as the lights suddenly go out
on opening an unexpected parcel
when a long-lost cousin appears at the door
after hearing the lottery results
as a balloon pops nearby
when the magician's trick succeeds
on discovering a hidden room
as the guests jump out shouting
after reading a shocking headline
when the phone rings at midnight
as a deer leaps across the road
on seeing the final exam score
when the curtain rises on a strange sight
after an unexpected announcement
as confetti rains down""",
    "sadness": """after the funeral
while reading an old love letter
after saying goodbye at the airport
on hearing of a friend's illness
while packing up a childhood home
after losing the final match
while looking through faded photographs
after the breakup
as the rain streaks the window
on an empty anniversary
after a beloved pet passes away
while clearing out a late parent's wardrobe
after the rejection letter arrives
at the hospital bedside
as the removal van drives away""",
    "anger": """after being cut off in traffic
when the deadline is moved again
after an insulting remark
as the referee makes a terrible call
when the neighbour's alarm wakes everyone
after discovering the broken window
during a heated argument
when the flight is cancelled without explanation
after being blamed unfairly
as the printer jams once more
when a colleague takes credit for the work
after reading a rude email
during a shouting match
when the queue jumper pushes ahead
after hearing a blatant lie""",
    "disgust": """on smelling spoiled milk
after finding mould on the bread
at the sight of an overflowing bin
on stepping in something sticky
after tasting rotten fruit
when a cockroach scuttles across the counter
at the sight of a clogged drain
on discovering a hair in the soup
while cleaning a filthy bathroom
when someone sneezes on the food
after opening a neglected fridge
at a pile of slimy leftovers
when the stench of sewage drifts past
on touching a greasy handrail
while watching someone chew loudly""",
    "fear": """as footsteps approach in the dark
when the floor creaks upstairs
during a violent thunderstorm
as the plane lurches in turbulence
on hearing a scream outside
when a stranger follows too closely
as the car skids on ice
during a horror film
when a spider drops from the ceiling
as the smoke alarm blares
while walking through a deserted alley
when the ground begins to shake
as a growling dog blocks the path
on waking to a strange noise
while lost in the forest at night""",
    "contempt": """while listening to a boastful rival
after hearing a feeble excuse
as a junior colleague fumbles the presentation
when a rival brags about a trivial win
while reviewing sloppy work
during a pretentious wine tasting
as a salesman overpromises
after a clumsy apology
when the opponent trips over the lines
while reading a badly written review
as a neighbour shows off a gaudy car
after an obvious lie
during a tedious speech by a self-important manager
when someone mispronounces a simple word
as the critic praises a mediocre painting""",
}


@lru_cache(maxsize=None)
def emotion_words(emotion: str) -> EmotionWords:
    """The word lists of ``emotion`` (one of ``schema.EMOTIONS``)."""
    if emotion not in _ADJ:
        raise InvalidInputError(f"unknown emotion {emotion!r} (accepted: {', '.join(EMOTIONS)})")
    return EmotionWords(emotion, _words(_ADJ[emotion]), _words(_NOUN[emotion]), _clauses(_VERB[emotion]),
                        _clauses(_BODY[emotion]), _clauses(_CONTEXT[emotion]))


# --- who and where: shared by every emotion -------------------------------------------------------
ROLES: Dict[str, Tuple[str, ...]] = {
    "child": _words("schoolchild youngster kindergartner second-grader scout pupil toddler preschooler "
                    "choir_singer piano_pupil"),
    "teen": _words("teenager high-schooler student skateboarder drummer babysitter lifeguard gamer sprinter "
                   "trainee apprentice volunteer guitarist swimmer chess_player"),
    "young": _words("nurse teacher librarian carpenter electrician plumber mechanic farmer baker chef barista "
                    "pilot surgeon dentist firefighter soldier sailor journalist photographer painter sculptor "
                    "violinist cellist pianist singer dancer actor architect engineer programmer scientist "
                    "chemist biologist astronomer geologist archaeologist lawyer accountant banker cashier "
                    "shopkeeper florist gardener butcher tailor jeweller locksmith welder courier paramedic "
                    "pharmacist veterinarian zookeeper ranger climber cyclist runner boxer footballer coach "
                    "referee reporter editor novelist poet comedian magician juggler acrobat receptionist "
                    "manager entrepreneur economist diplomat detective bartender beekeeper shepherd tutor "
                    "researcher designer mathematician translator interpreter astronaut midwife"),
    "middle": _words("nurse teacher librarian carpenter electrician plumber mechanic farmer baker chef pilot "
                     "surgeon dentist firefighter sailor journalist photographer painter sculptor professor "
                     "lawyer judge accountant banker shopkeeper florist gardener butcher tailor jeweller "
                     "locksmith welder paramedic pharmacist veterinarian ranger coach referee editor novelist "
                     "poet playwright director magician manager executive entrepreneur economist politician "
                     "diplomat mayor detective bartender sommelier winemaker beekeeper rancher principal "
                     "headteacher historian conductor watchmaker bookseller"),
    "old": _words("retiree pensioner veteran storyteller watchmaker gardener fisher professor grandparent "
                  "bookseller shepherd beekeeper widower historian philosopher organist"),
}
LOOKS: Dict[str, Tuple[str, ...]] = {
    "any": _words("freckled dark-haired curly-haired red-haired blonde brown-eyed blue-eyed green-eyed "
                  "grey-eyed hazel-eyed pale tanned round-faced thin-faced bespectacled black-haired "
                  "olive-skinned dark-skinned fair-skinned rosy-cheeked sharp-featured slender lanky stocky "
                  "petite tall short-haired long-haired braided dreadlocked tattooed sunburned"),
    "m_adult": _words("bearded mustached stubbled clean-shaven goateed"),
    "m_older": _words("bald balding"),
    "older": _words("grey-haired wrinkled white-haired silver-haired weathered"),
}
CLOTHING = _clauses("""in a faded denim jacket
in a knitted wool sweater
wearing a yellow raincoat
in a crisp white shirt
wearing a striped scarf
in paint-splattered overalls
wearing a baseball cap
in a tailored navy suit
wearing a hospital gown
in a muddy football kit
wearing round tortoiseshell glasses
in a flowered summer dress
wearing a chef's apron
in a leather motorcycle jacket
wearing a hooded sweatshirt
in a velvet evening gown
wearing a hard hat
in pyjamas
wearing a school uniform
in a tweed blazer""")
SCENES = _clauses("""in a crowded subway car
at the kitchen table
in a hospital waiting room
on a windswept beach
at a busy train station
on a park bench
at a wedding reception
in a supermarket aisle
on a city rooftop
beside a campfire
at an airport gate
on a rainy street corner
at a football stadium
on a mountain trail
at a village market
on a ferry deck
in a candlelit living room
on a theatre stage
in a dentist's chair
at a rock concert
on a balcony at dusk
at a job interview
in a tent during a storm
at a chess tournament""")
# composed places: "{prep} a/an {PLACE_ADJECTIVE} {noun}" ("in a cluttered workshop")
PLACES = tuple(tuple(line.split(" ", 1)) for line in _clauses("""in kitchen
in office
in classroom
in laboratory
in library
in bookshop
in bakery
in greenhouse
in courtroom
in newsroom
in hotel lobby
in lecture hall
in elevator
in museum gallery
in workshop
in garage
in attic
in cellar
in warehouse
in corridor
in stairwell
in waiting room
in pharmacy
in hair salon
in tearoom
in diner
in cafeteria
in canteen
in pub
in nightclub
in ballroom
in chapel
in cathedral
in monastery
in barn
in stable
in orchard
in vineyard
in meadow
in forest clearing
in alleyway
in marketplace
in train carriage
in taxi
in lorry cab
in cockpit
in submarine
in lifeboat
in canoe
in gondola
in observatory
in planetarium
in aquarium
in gymnasium
in locker room
in changing room
in boardroom
in cubicle
in studio
in darkroom
in recording booth
in dressing room
in rehearsal hall
in art school
in nursery
in playground
in schoolyard
in courtyard
in cloister
in conservatory
in fitting room
in laundrette
in launderette basement
in post office
in police station
in fire station
in train depot
in factory
in bakery kitchen
in boathouse
in lighthouse
in farmhouse
in cottage
in bungalow
in penthouse
in apartment
in dormitory
in hostel
in caravan
in motorhome
at bus stop
at railway platform
at crossroads
at harbour wall
at fountain
at ticket counter
at reception desk
at checkout
at bonfire
at picnic table
at window seat
at piano
at easel
at workbench
at sewing machine
at campsite
at roadside stall
at fairground
at zoo enclosure
at skating rink
at swimming pool
at racetrack
at riverbank
at quayside
at hilltop
at graveside
at bedside
at doorstep
at garden gate
on pier
on jetty
on bridge
on riverboat
on hillside
on sand dune
on ski slope
on tennis court
on cricket pitch
on basketball court
on stage
on porch
on veranda
on terrace
on fire escape
on rooftop terrace
on train platform
on escalator
on motorway verge
on country lane
on cobbled street
on boulevard
on promenade
on bicycle path"""))
PLACE_ADJECTIVES = _words("""crowded dim quiet sunlit rain-soaked cluttered echoing narrow spacious chilly stuffy smoky
deserted bustling noisy cramped draughty sun-dappled fluorescent-lit candlelit wood-panelled tiled carpeted marble
rundown elegant shabby tidy messy freezing humid windswept foggy misty snowy muddy dusty polished gleaming crumbling
modern old-fashioned rustic suburban seaside hillside riverside lakeside empty packed overheated airy gloomy bright
shadowy lamplit moonlit frosty sweltering breezy leafy overgrown renovated derelict cosy homely grand modest
ramshackle pristine chaotic orderly vast tiny colourful drab""")
TIMES = _clauses("""at dawn
late at night
on a Monday morning
during the lunch rush
in midwinter
at sunset
just before midnight
on a sweltering afternoon
during a power cut
on the first day of spring
in the small hours
at closing time
on a grey Sunday
during rush hour
on New Year's Eve
at the end of a long shift
on a foggy evening
during a heatwave
at first light
in late autumn
on a snowy morning
during the school holidays
at teatime
on a rainy Tuesday
after a sleepless night""")
HELD = _words("holding carrying cradling clutching balancing gripping")
OBJECTS = _words("""a_chipped_mug a_folded_newspaper a_bouquet_of_tulips a_leather_briefcase a_smartphone a_paper_bag
a_paperback_novel a_wooden_spoon a_violin_case a_bicycle_helmet a_clipboard a_camera a_shopping_basket
a_steaming_kettle a_birthday_card a_handwritten_letter a_takeaway_coffee a_stack_of_files an_umbrella a_toolbox
a_teddy_bear a_football a_watering_can a_lantern a_suitcase a_map a_notebook a_set_of_keys a_plate_of_pasta
a_glass_of_wine a_lunchbox a_tennis_racket a_guitar a_rolled-up_poster a_cardboard_box a_cup_of_tea
a_parcel a_shovel a_fishing_rod a_textbook a_baby_bottle a_hammer a_paintbrush a_laptop a_wicker_basket
a_loaf_of_bread a_flashlight a_photograph_album a_microphone a_trophy a_passport a_ticket a_crossword
a_sandwich a_bunch_of_grapes a_jar_of_honey a_stethoscope a_rolling_pin a_candle a_skateboard a_sketchbook
a_thermos_flask a_bucket a_newspaper_clipping a_wrapped_present a_frying_pan a_receipt""")
STOPWORDS = frozenset(_words("""a about above after again against all am an and any are aren't as at be because been
before being below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't
down during each few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here
here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's
me more most mustn't my myself no nor not of off on once only or other ought our ours ourselves out over own
same shan't she she'd she'll she's should shouldn't so some such than that that's the their theirs them
themselves then there there's these they they'd they'll they're they've this those through to too under until
up very was wasn't we we'd we'll we're we've were weren't what what's when when's where where's which while
who who's whom why why's with won't would wouldn't you you'd you'll you're you've your yours yourself
yourselves s t just now will don should"""))
