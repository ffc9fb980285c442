"""The offline description generator's word lists, written for emo3d (no third-party lexicon).

One owner for the words ``textgen`` writes with and that other code may reuse (e.g. to train a reader):

* ``emotion_words(e)`` -> :class:`EmotionWords`: synonyms of one emotion (adjectives, nouns, verbs; formal
  and everyday / slang words: "furious", "cheesed-off"), body/posture clauses, context clauses (what happened),
  idioms that describe the person (``IDIOMS``: "hot under the collar") and what people say or type in the
  moment (``REACTIONS``: "for crying out loud") for ``schema.EMOTIONS``; ``fill`` puts a possessive into a
  clause or idiom;
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

__all__ = ["EmotionWords", "emotion_words", "fill", "REFLEXIVE", "IDIOMS", "REACTIONS", "INTENSITY_ADVERBS",
           "INTENSITY_ADJECTIVES", "NEUTRAL_ADVERBS",
           "ROLES", "LOOKS", "CLOTHING", "SCENES", "PLACES", "PLACE_ADJECTIVES", "TIMES", "HELD",
           "OBJECTS", "STOPWORDS"]


def _words(s: str) -> Tuple[str, ...]:
    """Whitespace-separated words; ``_`` stands for a space inside one entry ("taken_aback")."""
    return tuple(w.replace("_", " ") for w in s.split())


def _clauses(s: str) -> Tuple[str, ...]:
    """One entry per non-empty line."""
    return tuple(line.strip() for line in s.strip().splitlines() if line.strip())


def _phrases(s: str) -> Tuple[str, ...]:
    """One entry per ``;``-separated item (line breaks are spaces)."""
    return tuple(" ".join(x.split()) for x in s.split(";") if x.strip())


@dataclass(frozen=True)
class EmotionWords:
    """The words of one emotion: ``adjectives`` ("furious", "cheesed-off"), ``nouns`` ("fury", "strop"),
    ``verbs`` (third person, "glowers"), ``body`` clauses ("{p} fists clenched"), ``contexts`` ("after being
    cut off in traffic"), ``idioms`` that describe the person ("hot under the collar", "losing {p} cool") and
    ``reactions``: what people say or type in the moment ("grr", "for crying out loud"). ``{p}`` / ``{r}`` in
    a clause or idiom are the possessive / reflexive (:func:`fill`)."""
    emotion: str
    adjectives: Tuple[str, ...]
    nouns: Tuple[str, ...]
    verbs: Tuple[str, ...]
    body: Tuple[str, ...]
    contexts: Tuple[str, ...]
    idioms: Tuple[str, ...]
    reactions: Tuple[str, ...]
    informal: Tuple[str, ...] = ()        # the everyday / slang words among ``adjectives`` and ``nouns``

    def __post_init__(self):
        for name in ("adjectives", "nouns", "verbs", "body", "contexts", "idioms", "reactions"):
            items = getattr(self, name)
            if not items or len(set(items)) != len(items):
                dup = sorted({x for x in items if items.count(x) > 1})
                raise InvalidInputError(f"EmotionWords({self.emotion!r}).{name} must be non-empty and "
                                        f"without repeats (repeated: {dup})")
        stray = sorted(set(self.informal) - set(self.synonyms))
        if stray:
            raise InvalidInputError(f"EmotionWords({self.emotion!r}).informal must be among its adjectives and "
                                    f"nouns; not there: {stray}")

    @property
    def synonyms(self) -> Tuple[str, ...]:
        """The emotion-naming words (nouns, then adjectives): what a reader can learn the emotion from."""
        return self.nouns + self.adjectives

    @property
    def formal(self) -> Tuple[str, ...]:
        """:attr:`synonyms` without the :attr:`informal` ones."""
        informal = set(self.informal)
        return tuple(w for w in self.synonyms if w not in informal)


REFLEXIVE = {"her": "herself", "his": "himself", "their": "themselves", "my": "myself", "your": "yourself"}


def fill(phrase: str, poss: str) -> str:
    """``phrase`` with ``{p}`` -> the possessive ``poss`` ("her", "his", "their", "my", "your") and ``{r}`` ->
    its reflexive ("herself" ...)."""
    if poss not in REFLEXIVE:
        raise InvalidInputError(f"fill: unknown possessive {poss!r} (accepted: {', '.join(REFLEXIVE)})")
    return phrase.format(p=poss, r=REFLEXIVE[poss])


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
               "level-headed unmoved stoic even-tempered unruffled unflappable "
               "contemplative reflective absorbed focused observant patient sober businesslike tranquil "
               "measured inscrutable undisturbed nonchalant unperturbed dispassionate self-possessed "
               "unemotional restrained expectant watchful neutral-looking stoical quiet-faced placid-faced "
               "untroubled unhurried quizzical puzzled uncertain curious inquisitive noncommittal introspective "
               "meditative preoccupied distracted daydreaming unexpressive imperturbable self-contained equable "
               "phlegmatic unconcerned uninvolved emotionless straight-faced sedate unexcited "
               "undemonstrative methodical deliberate analytical studious",
    "happiness": "joyful happy cheerful delighted elated glad jubilant radiant merry amused pleased content "
                 "ecstatic gleeful blissful beaming overjoyed euphoric exuberant buoyant chipper "
                 "sunny upbeat lighthearted carefree jovial jolly mirthful exhilarated rapturous giddy tickled "
                 "gratified contented satisfied triumphant exultant enchanted charmed playful bubbly "
                 "glowing heartened uplifted blithe cheery genial optimistic grateful relieved elevated "
                 "smiling grinning laughing sunny-faced radiant-eyed tickled_pink starry-eyed joyous",
    "surprise": "surprised astonished amazed stunned startled shocked dumbfounded astounded flabbergasted "
                "bewildered awestruck speechless thunderstruck agog incredulous staggered "
                "taken_aback dazed nonplussed confounded baffled mystified disbelieving electrified "
                "jolted awed spellbound transfixed wonderstruck stupefied stunned_silent "
                "open-mouthed wide-eyed goggle-eyed agape wowed dazzled bemused thrown rocked "
                "bowled_over knocked_sideways slack-jawed round-eyed popeyed",
    "sadness": "sad sorrowful melancholy gloomy mournful miserable heartbroken despondent tearful dejected "
               "forlorn grieving wistful downcast crestfallen disconsolate desolate woeful glum morose doleful "
               "lugubrious dispirited disheartened despairing anguished bereft inconsolable weepy downhearted "
               "heavy-hearted lonely wretched somber regretful hurt wounded defeated discouraged hopeless "
               "brokenhearted careworn troubled dismal mopey unhappy teary-eyed red-eyed grief-stricken "
               "sorrow-laden woebegone sullen lachrymose forsaken abandoned sorrowing tormented dolorous bleak "
               "cheerless joyless plaintive rueful pitiful pained aching heartsick homesick lovesick elegiac tragic"
               "drained shattered crushed broken low-spirited nostalgic bereaved",
    "anger": "angry furious irate livid indignant resentful hostile irritated annoyed fuming "
             "seething wrathful infuriated exasperated cross vexed aggravated irked riled provoked "
             "bristling belligerent combative heated hot-tempered frustrated agitated incandescent apoplectic "
             "ireful testy snappish stormy thunderous menacing vengeful defiant truculent glowering "
             "embittered red-faced wild-eyed steaming raging bad-tempered",
    "disgust": "disgusted revolted repulsed sickened nauseated appalled queasy repelled offended "
               "nauseous squeamish put_off affronted scandalized galled displeased bilious gagging "
               "turned_off sick_to_the_stomach green_around_the_gills revulsed unsettled distasteful "
               "scandalised retching green-faced disapproving fastidious",
    "fear": "afraid frightened scared anxious panicked horrified nervous fearful alarmed petrified "
            "uneasy apprehensive jittery jumpy skittish timid shaken trembling panicky distraught "
            "aghast fretful worried tense paranoid terror-stricken horror-struck intimidated insecure "
            "cowering wary edgy rattled unnerved daunted hysterical haunted hunted white-faced frozen_with_fright "
            "fear-stricken panic-stricken ashen",
    "contempt": "contemptuous scornful disdainful haughty arrogant smug condescending dismissive derisive "
                "sneering superior mocking sardonic supercilious sarcastic cynical snobbish "
                "imperious aloof lofty self-satisfied jeering taunting belittling disparaging "
                "withering unimpressed sniffy snooty uppity insolent disrespectful derisory high-handed "
                "cold-eyed contemptuous-looking sneering_and_aloof scathing caustic "
                "contemptuously_amused",
}
_NOUN = {
    "neutral": "calm composure indifference neutrality stillness detachment reserve ease equanimity serenity "
               "tranquility poise placidity impassivity restraint steadiness contemplation concentration "
               "attentiveness quietude patience focus self-possession thoughtfulness unconcern evenness curiosity "
               "uncertainty introspection preoccupation absorption reverie musing deliberation impartiality "
               "objectivity imperturbability calmness quietness unflappability dispassion sobriety watchfulness",
    "happiness": "joy happiness delight glee bliss cheer elation contentment amusement gladness jubilation "
                 "euphoria exhilaration merriment mirth rapture exuberance gaiety jollity joviality pleasure "
                 "satisfaction gratification triumph exultation cheerfulness lightheartedness buoyancy "
                 "ecstasy enchantment felicity playfulness radiance relief gratitude high_spirits joyousness "
                 "sunniness",
    "surprise": "surprise astonishment amazement shock disbelief bewilderment awe wonder incredulity "
                "stupefaction wonderment bafflement perplexity puzzlement startlement jolt marvel "
                "speechlessness stupor incredulousness bemusement unexpectedness",
    "sadness": "sadness sorrow grief melancholy despair misery heartache gloom anguish dejection woe despondency "
               "desolation heartbreak mourning lament regret loneliness longing yearning hopelessness "
               "unhappiness bereavement wistfulness hurt dolefulness disappointment dismay wretchedness sorrowing "
               "forlornness sorrowfulness desolateness melancholia bleakness heaviness tearfulness weariness "
               "devastation pain ache homesickness heartsickness lamentation pathos remorse",
    "anger": "anger fury rage wrath outrage indignation resentment hostility irritation annoyance exasperation "
             "frustration ire vexation animosity aggression antagonism bitterness spite temper agitation "
             "belligerence displeasure umbrage vehemence ferocity irascibility",
    "disgust": "disgust revulsion repulsion distaste loathing nausea aversion abhorrence repugnance queasiness "
               "squeamishness detestation odium antipathy sickness grossness disapproval nauseousness revolt",
    "fear": "fear terror dread panic anxiety alarm horror fright apprehension trepidation unease nervousness "
            "worry foreboding disquiet angst jitters hysteria distress timidity fearfulness panickiness",
    "contempt": "contempt scorn disdain derision mockery condescension arrogance superiority haughtiness "
                "smugness sarcasm cynicism snobbery insolence disrespect ridicule contemptuousness loftiness "
                "superciliousness dismissiveness scornfulness disparagement scathing_disdain derisiveness "
                "haughty_indifference",
}
# --- everyday, informal and idiomatic emotion language (written for emo3d) ----------------------------
# What people actually type: slang and informal adjectives / nouns (joined to the lists above by
# ``emotion_words``), idioms that describe the person (``IDIOMS``: "on top of the world", "in a funk";
# ``{p}`` is the possessive, ``{r}`` the reflexive: "full of {r}") and what people say or type in the moment
# (``REACTIONS``: "yikes", "pfft", "that's rancid"; read by the reader's word prompts, not by the
# descriptions, which describe a face). A word or phrase sits under one emotion only; none of them is a
# key word of the reader's out-of-vocabulary evaluation sets (``emo3d.models.probes``).
_ADJ_INFORMAL = {
    "neutral": "chill chilled-out low-key unfussed blasé spaced-out spacey glassy-eyed glazed-over vacant-eyed "
               "blank-faced wooden-faced unreactive unmoving wooden unanimated inert robotic mechanical clinical "
               "impersonal guarded closed-off buttoned-up even-keeled grounded centred zen leisurely unenthused "
               "bored-looking half-asleep yawning out-of-it checked-out tuned-out faraway far-off absent "
               "sphinx-like enigmatic cryptic unsmiling unblinking no-nonsense unsentimental calm-faced "
               "mild-mannered easy-going unexcitable steady-eyed level-eyed serious-looking neutral-faced "
               "mask-like bland lethargic sluggish torpid ho-hum so-so taciturn reticent laconic tight-lipped "
               "unforthcoming stock-still glassy bored apathetic listless",
    "happiness": "buzzing pumped psyched hyped amped jazzed chirpy perky peppy bouncy sprightly spirited "
                 "happy-go-lucky cock-a-hoop smiley giggly chuckling chortling whooping festive celebratory "
                 "victorious blessed thankful fulfilled entertained cheered sunshiny feel-good hunky-dory "
                 "blissed-out loved-up smitten besotted lovestruck twitterpated ebullient effervescent "
                 "jaunty gladdened enraptured transported beatific rapt proud hopeful sanguine light-hearted "
                 "bright-eyed sparkly-eyed twinkly-eyed delirious high-spirited good-humoured glad-hearted",
    "surprise": "dumbstruck bug-eyed saucer-eyed tongue-tied boggled befuddled discombobulated shook flummoxed "
                "awestricken gasping gaping wide-mouthed shell-shocked star-struck unsuspecting unprepared "
                "goggling open-eyed wordless breathless perplexed bamboozled confused unbelieving "
                "surprised-looking amazed-looking struck_dumb stopped_cold",
    "sadness": "down low downbeat deflated let-down disappointed upset hurting heartsore lovelorn jilted misty-eyed "
               "watery-eyed puffy-eyed sniffly sniffling blubbering bawling crying snivelling droopy hangdog "
               "long-faced sad-eyed sad-faced melancholic sombre dreary depressed emo sulky beaten-down worn-down "
               "resigned unloved lonesome friendless left-out rejected spurned disillusioned heavy-eyed "
               "tear-stained tear-streaked pining mourning broken-spirited beaten sorry-looking down-hearted",
    "anger": "cheesed-off hacked-off brassed-off narked peeved miffed ratty grumpy cranky grouchy shirty stroppy "
             "snippy tetchy crabby huffy sore fed-up worked-up wound-up het-up hot-headed ballistic rabid "
             "rage-filled snarling scowling glaring growly fiery explosive volcanic irascible choleric splenetic "
             "peevish petulant salty triggered aggro hangry mardy teed-off browned-off riled-up ornery "
             "cantankerous irritable short-tempered quick-tempered vindictive spiteful vicious savage ferocious "
             "bitter murderous",
    "disgust": "cringing squirming grimacing heaving sick-looking green-tinged averse finicky fussy picky",
    "fear": "shaky twitchy antsy nervy frantic frenzied trembly quivering shivering menaced threatened vulnerable "
            "defenceless helpless disquieted perturbed nerve-racked nerve-wracked stressed stressed-out overwrought "
            "panicking hyperventilating goose-pimpled fear-filled timorous fainthearted mousy cowardly spineless "
            "lily-livered white-knuckled sweaty-palmed clammy keyed-up uptight distressed traumatized terrorized "
            "scared-looking fretting",
    "contempt": "snotty toffee-nosed hoity-toity la-di-da snobby self-important self-righteous sanctimonious preachy "
                "judgy judgmental cocky bigheaded big-headed swaggering entitled elitist priggish lippy mouthy "
                "flippant glib wry frosty snarky sarky smart-mouthed wisecracking catty acerbic biting cutting "
                "sniggering snickering tittering pitying demeaning deprecating derogatory insulting impertinent "
                "irreverent bumptious overweening egotistical narcissistic grandiose complacent cocksure "
                "vainglorious boastful braggy show-offy high-and-mighty uppish lordly overbearing cavalier offhand "
                "offhanded prissy prim nose-in-the-air stuck-up pompous conceited vain pretentious smart-alecky "
                "side-eyeing pooh-poohing ridiculing underwhelmed",
}
_NOUN_INFORMAL = {
    "neutral": "blankness vacancy boredom ennui apathy listlessness nonchalance sangfroid aplomb coolness "
               "level-headedness self-control inscrutability reticence stoicism lethargy torpor languor idleness "
               "blandness",
    "happiness": "ebullience effervescence jauntiness zest gusto glow good_cheer good_humour hilarity laughter "
                 "giggles joyfulness contentedness wellbeing pride thankfulness festivity joie_de_vivre good_vibes "
                 "cheeriness chirpiness perkiness blissfulness",
    "surprise": "befuddlement confusion astoundment shock_and_awe wide-eyed_wonder",
    "sadness": "funk doldrums low_spirits tears gloominess downheartedness depression malaise woefulness dolour "
               "self-pity mopiness emptiness hollowness letdown dejectedness pining disillusionment rejection "
               "heavy_heart broken_heart",
    "anger": "aggro hissy_fit tantrum huff strop snit conniption hot-headedness peevishness grumpiness crankiness "
             "petulance pique bile spleen venom irritability crossness bad_temper outburst grouchiness tetchiness "
             "crabbiness rancour acrimony vitriol hatred hate enmity malice vindictiveness",
    "disgust": "cringe gag_reflex sick_feeling physical_revulsion moral_disgust",
    "fear": "nerves cold_feet jumpiness edginess twitchiness cold_sweat panic_attack phobia paranoia scare "
            "cowardice misgiving qualms consternation stress tension suspense",
    "contempt": "snobbishness snootiness snark sass "
                "self-righteousness sanctimony hubris vanity conceit cockiness pomposity pity disregard contumely "
                "pretension pretentiousness self-importance entitlement elitism priggishness high-handedness "
                "one-upmanship attitude",
}
IDIOMS = {
    "neutral": _phrases("""cool as a cucumber; calm and collected; cool, calm and collected; miles away;
a million miles away; in a world of {p} own; away with the fairies; on autopilot; going through the motions;
staring into space; staring into the middle distance; giving nothing away; not batting an eyelid;
without a flicker of emotion; as calm as a millpond; steady as a rock; taking it all in; watching and waiting;
half awake; killing time; just chilling; taking it easy; neither happy nor sad; not bothered either way;
on standby; unmoved by it all; with a face like a mask; with a vacant look; with glazed eyes;
lost in a daydream; in neutral; as still as a statue; keeping {p} cool;
keeping calm; bored out of {p} skull; in a holding pattern; all business; not giving anything away"""),
    "happiness": _phrases("""on top of the world; in high spirits; in good spirits; in a great mood; in a good mood;
full of beans; jumping for joy; dancing with joy; as pleased as punch; as happy as a clam; as happy as a lark;
happy as can be; like a kid in a candy store; like a dog with two tails; riding high; living the dream;
all smiles; grinning from ear to ear; smiling from ear to ear; bursting with joy; bursting with happiness;
glowing with happiness; in a good place; on top form; sitting pretty; full of the joys of spring; in raptures;
in a celebratory mood; delighted beyond words; beside {r} with joy; overcome with joy; loving life;
loving every minute; having the time of {p} life; having a blast; having a ball; in stitches; cracking up;
laughing {p} head off; fit to burst with pride; bright-eyed and bushy-tailed; happy as a sandboy; on a roll;
pumped up; in a happy place; grinning like a loon"""),
    "surprise": _phrases("""caught napping; taken by surprise; knocked for six; thrown for a loop; left speechless;
lost for words; at a loss for words; with eyes out on stalks; with eyes like saucers; rocked to the core;
stopped in {p} tracks; caught unawares; caught on the hop; in total shock; in shock; in utter amazement;
completely caught out; in awe; knocked off {p} feet; unable to believe {p} eyes; doing a double take;
totally unprepared for that; stunned into silence; taken unawares; with {p} mouth hanging open;
struck speechless; reeling from the news; hit by a bombshell; knocked sideways by the news;
open-mouthed in amazement"""),
    "sadness": _phrases("""down in the mouth; in a funk; in the doldrums; at a low ebb; at rock bottom;
with a heavy heart; with a long face; with a lump in {p} throat; choked up; all choked up; close to tears;
near tears; in floods of tears; in tears; crying {p} eyes out; falling apart; torn up inside; cut up about it;
sick at heart; heavy of heart; broken inside; dead inside; on a downer; in pieces; in mourning;
with a broken heart; nursing a broken heart; with a face like a wet weekend; a shadow of {p} former self;
sorry for {r}; at {p} lowest; in a dark place; in a bad place; going through a rough patch; having a rough day;
having a hard time; missing them terribly; all cried out; lower than low; down on {p} luck;
weighed down with sorrow; not {r} today; with {p} heart in pieces; wiping away tears"""),
    "anger": _phrases("""hot under the collar; bent out of shape; on the warpath; fit to be tied; blowing a fuse;
blowing a gasket; flying off the handle; seeing red; at the end of {p} tether; foaming at the mouth;
spitting feathers; in a temper; in a rage; in a foul temper; in a foul mood; in a bad mood; throwing a tantrum;
losing {p} temper; losing {p} cool; blowing {p} top; hitting the roof; ready to explode; ready to snap;
with {p} hackles up; having a fit; in a huff; in a strop; in a snit; like a bear with a sore head;
sick and tired of it; fed up to the back teeth; up to here with it; red with fury; shaking with fury;
spoiling for a fight; itching for a fight; out for blood; breathing fire; with murder in {p} eyes;
on a short fuse; all riled up; worked into a lather; beside {r} with rage; in a towering rage"""),
    "disgust": _phrases("""turned off by it; put off {p} food; off {p} food; ready to throw up; close to throwing up;
wanting to retch; on the verge of gagging; holding {p} nose; pinching {p} nose; with {p} stomach turning;
with a turned stomach; with a churning stomach; squirming with disgust; recoiling in disgust;
recoiling from the smell; gagging at the smell; cringing at the sight; grimacing at the taste;
repelled by the mess; appalled by the filth; nauseated by the stench; disgusted to the core;
sick at the sight of it; unable to stomach it; heaving at the smell; dry heaving; with {p} skin crawling;
physically sick; sick at the thought; gagging on the smell; put off by the smell; sick to the core"""),
    "fear": _phrases("""shaking like a leaf; trembling like a leaf; with {p} heart in {p} mouth; with a pounding heart;
with a racing heart; in a cold sweat; with {p} hair standing on end; frozen to the spot; rooted to the spot;
nearly jumping out of {p} skin; having kittens; scared of {p} own shadow; a bag of nerves; a nervous wreck;
a bundle of nerves; with butterflies in {p} stomach; in a blind panic; white as a sheet; pale as a ghost;
sweating bullets; on tenterhooks; on pins and needles; as nervous as a cat; like a deer in the headlights;
like a rabbit in the headlights; hiding under the covers; running scared; with {p} blood running cold;
chilled to the bone; quivering with fear; shivering with fear; sick with worry; worried sick;
beside {r} with worry; gripped by panic; in the grip of fear; in a state of panic; too scared to move;
too afraid to breathe; holding {p} breath in fear"""),
    "contempt": _phrases("""full of {r}; too good for everyone; too cool for school; high and mighty;
on {p} high horse; with an air of superiority; lording it over everyone; giving the side-eye; curling {p} lip;
with a curled lip; with a withering look; with a superior little smile; with a mocking half-smile;
pleased with {r}; so pleased with {r}; above it all; with {p} nose in the air; turning {p} nose up;
talking down to everyone; treating everyone like dirt; treating them like children; not impressed in the least;
far from impressed; above such things; pooh-poohing the idea; making fun of them; poking fun at them;
laughing at them, not with them; sniggering behind their backs; brushing them off;
giving them the cold shoulder; waving it away; acting as if it were beneath {r};
thinking {r} better than everyone"""),
}
REACTIONS = {
    "neutral": _phrases("""meh; hmm; okay; ok then; fine; sure; noted; right; alright then; nothing much;
just another day; same old, same old; business as usual; nothing to report; it is what it is; no strong feelings;
no opinion either way; fair enough; got it; understood; nothing special; just waiting here"""),
    "happiness": _phrases("""yay; woohoo; hooray; yippee; whoopee; yesss; hell yeah; let's go!; best day ever;
love it; love this; so happy; lol; haha; hahaha; lmao; rofl; awesome; brilliant; fantastic; wonderful; fab; ace;
sweet!; this is the best; what a great day; can't stop smiling; so excited; woot; yeehaw; nailed it; life is good;
good times; couldn't be happier; never been happier"""),
    "surprise": _phrases("""wow; oh wow; omg; holy cow; holy moly; holy smokes; no kidding; seriously?; wait, what?;
say what?; get out!; blimey; crikey; gosh; golly; jeepers; shut the front door; wowza; unbelievable; incredible!;
didn't see that coming; who knew?; what a surprise; is this for real?; for real?; what on earth;
never saw that coming"""),
    "sadness": _phrases("""sigh; oh well; it hurts; so sad; sad face; boo hoo; rip; rest in peace; sad times;
life is unfair; nobody cares; it's over; alone again; what's the point; heartbreaking;
everything is falling apart"""),
    "anger": _phrases("""grr; argh; damn it; dammit; for crying out loud; oh come on; enough is enough; shut up;
get lost; back off; screw this; what the hell; this is ridiculous; unacceptable; infuriating; bloody hell;
for god's sake; not again; stop it!; this sucks; so annoying"""),
    "disgust": _phrases("""blech; bleurgh; blegh; barf; gag; nasty; so nasty; that's nasty; that's disgusting;
disgusting; rancid; putrid; foul; rank; that smells rotten; it's rotten; what is that smell; smells like rotten eggs;
mouldy bread; the milk has gone off; it's gone off; how unhygienic; gag-worthy; stomach-turning; stomach-churning;
nauseating; skin-crawling; cringey; so cringe; grody; skanky; manky; minging; festering; fetid; gunky; cruddy;
grimy; filthy; maggoty; rotting; smelly; whiffy; malodorous; greasy; mucky; scummy; unappetising; unappetizing;
inedible; loathsome; odious; repugnant; abhorrent; unsavoury; off-putting; gut-churning"""),
    "fear": _phrases("""eek; yikes; help!; oh no; oh god no; please no; run!; what was that noise?; is someone there?;
aaah; eerie; spine-chilling; hair-raising; bloodcurdling; nerve-racking; nightmarish; ominous; scary; alarming;
chilling; what if something goes wrong; goosebumps; the heebie-jeebies"""),
    "contempt": _phrases("""pfft; psh; pshaw; tsk tsk; hmph; humph; yeah, right; as if; oh please; get over yourself;
big deal; so what; who cares; how pathetic; pathetic; nice try; how quaint; how cute; what a joke; what a clown;
amateurs; typical; whatever; puh-lease; what a know-it-all; such a snob; what a show-off; oh, how original;
how very clever; try harder"""),
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
reads on
nods
sips {p} coffee
scrolls through {p} phone
looks ahead
waits {p} turn""",
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
cheers
twirls
claps
sings along
hugs everyone
whistles a tune""",
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
blurts out a question
stammers
shakes {p} head in disbelief
gulps
gasps aloud
leans back sharply""",
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
sinks into a chair
trudges home
hangs {p} head
stares out of the window
sits in silence
lets out a long sigh""",
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
bangs the door
yells
thumps the desk
slams the phone down
stomps away
hisses a curse""",
    "disgust": """recoils
gags
grimaces
winces
retches
shudders
turns away
pinches {p} nose
pulls back
clutches {p} stomach
pushes the plate away
covers {p} mouth
spits
holds {p} breath
steps back
heaves
groans
backs off
shakes {p} hands dry
makes a retching sound""",
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
holds {p} breath in fear
gulps nervously
bolts
whispers a prayer
huddles close
freezes in place""",
    "contempt": """sneers
scoffs
smirks
sniffs
snorts
shrugs dismissively
jeers
peers down {p} nose
mocks
shakes {p} head slowly
belittles everyone
tuts
waves the idea away
chuckles coldly
smiles without warmth
yawns pointedly
smiles thinly
chuckles at the attempt
sighs theatrically
turns {p} back""",
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
sitting perfectly upright
{p} hands resting on the steering wheel
{p} coat draped over one arm
seated with {p} back straight
{p} elbows resting on the counter
standing in line with the others
{p} head tilted slightly to listen
{p} pen poised over a notebook
{p} feet planted evenly
{p} arms loosely crossed
{p} hands cupped around a mug
{p} gaze resting on the middle distance
standing with {p} weight evenly balanced
{p} fingers resting on the keyboard
{p} bag on {p} shoulder
{p} back against the chair
{p} hands tucked into {p} sleeves
{p} briefcase resting at {p} feet
{p} spectacles pushed up on {p} forehead
{p} chin propped on one hand
{p} pencil tapping gently""",
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
waving both hands
{p} arms thrown around {p} friends
skipping down the path
{p} head bobbing to the music
holding {p} sides with laughter
{p} hands raised in triumph
spinning a child around
{p} feet tapping to the beat
{p} shoulders bouncing with giggles
hugging a pillow to {p} chest""",
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
turning sharply toward the noise
{p} mouth covered by one hand
{p} mug frozen in mid-air
{p} arms flung out
{p} hands gripping the table
{p} newspaper slipping from {p} fingers
{p} whole body jolting
half rising from {p} chair
{p} head whipping around
{p} fork hovering in mid-air""",
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
sitting alone on the stairs
{p} forehead pressed to the glass
{p} arms hanging loosely
{p} body folded over {p} knees
{p} hands clasped around a cold cup
resting {p} head on the desk
{p} footsteps slow and heavy
{p} coat still buttoned indoors
slumped in the back of the bus
staring out at the rain
{p} eyes on an old photograph
{p} hands pressed between {p} knees
{p} face half hidden by {p} hair
sitting on the edge of the bed
{p} cheek resting on {p} palm
{p} feet barely moving
{p} fingers tracing a name on a card
{p} breath catching in {p} throat
{p} hands pressed over {p} heart
wrapped in an old cardigan
{p} shoulders shaking silently
{p} legs tucked up on the sofa""",
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
slamming the door shut
{p} arms crossed tightly
standing toe to toe with a rival
{p} finger wagging
{p} veins throbbing at the temples
{p} hands on {p} hips
{p} fist raised
{p} chair shoved back
{p} arms flung wide in outrage
{p} foot stamping
{p} keys thrown on the table
{p} breath hissing through {p} nose""",
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
lifting a foot off the sticky floor
{p} nose buried in {p} sleeve
{p} arms held stiffly away from {p} body
gingerly lifting the lid
{p} shoulders shuddering
dropping the sponge in revulsion
{p} hand flapping at the smell
holding the bin bag at arm's length
{p} eyes watering from the smell
{p} feet tiptoeing through the mess""",
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
huddled in a corner
{p} hands clutching a blanket
{p} arms wrapped around {p} body
{p} feet ready to run
{p} back pressed to the door
{p} fingers gripping the rail
{p} body curled into a ball
{p} head ducked low
{p} knees pulled to {p} chest
peering through {p} fingers""",
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
leaning on the doorframe
{p} eyebrows and chin lifted
{p} legs crossed languidly
leaning back with {p} hands behind {p} head
{p} gaze sliding away
{p} fingers steepled
{p} arms crossed over {p} chest
glancing at {p} watch
{p} nose tilted upward
{p} feet up on the desk
{p} upper lip curling as {p} eyes slide away
{p} head tilted back
{p} cup raised in a mock toast
{p} hand flicking an imaginary speck
{p} eyes half-lidded
{p} shoulders turned away from the speaker""",
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
during a routine check-up
while filling in a form
during a weather forecast
while waiting at a red light
as the lecturer changes slides
while browsing the shelves
during a long train journey
while watching the clouds drift
as the committee takes a vote
while stirring a pot of soup
during an uneventful shift
while folding laundry
as the photocopier hums
while checking the timetable
during a routine inspection
while waiting to be called in
as the washing machine spins
during a slow afternoon at the shop
while proofreading a report
as the ferry crosses the bay
while waiting for the results to load
while waiting for the kettle to boil
during a dull budget presentation
while listening to the shipping forecast
as the cashier counts the change
while thumbing through a magazine
during the safety briefing
as the lift climbs slowly
while watching traffic from a window
as the clock ticks toward five
while waiting for a train delayed by ten minutes
during a silent reading hour
as the doctor reads the chart
while the barber trims {p} hair
as the tour guide recites dates
during a minute of silence
while adjusting a pair of reading glasses
during a quiet afternoon in the archive
while measuring flour for a recipe
as the dishwasher finishes its cycle
while waiting for the paint to dry
during the weekly inventory count
while labelling storage boxes
as the projector warms up
while watering the houseplants
during a routine fire drill
while jotting down a telephone number
as the bus idles at the depot
while comparing two insurance quotes
as the printer warms up
while listening to hold music""",
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
as the crowd cheers
after the baby's first steps
as the wedding band strikes up
after scoring the winning goal
on the first day of the holidays
as old friends burst into song
after the surgery goes well
while building a sandcastle
when the puppy licks {p} face
after a promotion is announced
on seeing snow for the first time
while riding a roller coaster
as a letter of acceptance arrives
at the end of a marathon
while feeding ducks at the pond
after a long-awaited homecoming
when the whole family gathers for dinner
after the exam results come in
as the sun rises over the mountains
while unwrapping a thoughtful gift
after hearing a terrible pun""",
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
as confetti rains down
as a bird flies in through the window
when the elevator doors open on a crowd
on finding an old photograph in a drawer
after a stranger knows {p} name
as the teacher announces a pop quiz
when the scoreboard flips in the last second
on seeing the price tag
after an old rival offers help
when the quiet student wins the debate
as the vase slips off the shelf
on opening the door to a marching band
when the dog suddenly starts talking on video
after the plot twist in the final chapter
when the cake collapses on the table
as the fountain erupts beside the path
on spotting a celebrity at the bakery
when the bill is paid by someone unseen
as thunder cracks overhead
after a secret is revealed at dinner
when the fire alarm rings during the exam""",
    "sadness": """after the funeral
while reading an old love letter
after saying goodbye at the airport
on hearing of a friend's illness
while packing up a childhood home
after losing the final match
while looking through faded photographs
after the separation
as the rain streaks the window
on an empty anniversary
after a beloved pet passes away
while clearing out a late parent's wardrobe
after the rejection letter arrives
at the hospital bedside
as the removal van drives away
after the last day of school
while reading the final chapter of a diary
as the train pulls away from the platform
after a friendship ends
on the anniversary of a loss
while listening to an old voicemail
as the old house is sold
after missing the chance to say goodbye
while sorting a grandmother's letters
as autumn leaves fall outside
after the team is relegated
on learning that the shop is closing for good
while watching a sad film alone
after a failed audition
when the invitations never come
as the hospice nurse leaves the room
after the small dog is not found
while holding an empty collar
on returning to an empty flat
after the dream job goes to someone else
after the final curtain of a beloved show
while reading condolence cards
as the ambulance drives away without sirens
after the friend moves abroad
while emptying a desk on the last day of work
as the funeral procession passes
after a child's drawing is thrown away
on finding a dead bird in the garden
while listening to rain on the roof of an empty house
after the old dog's last walk
as the lights go out in the closed theatre
after failing the driving test again
when nobody remembers {p} birthday
while looking at an unanswered message
as the wedding dress goes back in its box
after the orchestra plays its farewell concert
while scattering ashes by the sea
as the last guest leaves the wake
after a miscarriage
on reading a hospital discharge note for someone who did not come home
while packing a brother's belongings
after an apology that comes too late
as the family farm goes to auction
on a first Christmas without a parent
after the closing of the village school
while visiting a neglected grave
as a favourite teacher retires
after a long-distance call ends abruptly
while watching an old home video
as the ferry leaves the island for the last time
after the diagnosis is confirmed
while returning a borrowed book that can never be given back
on hearing a lullaby from childhood
after the final argument
as snow covers the empty playground""",
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
after hearing a blatant lie
after the car is towed
when the landlord refuses to fix the heating
after the bicycle is stolen
as the meeting runs over for the third time
when the parcel arrives smashed
after being kept on hold for an hour
when the promise is broken once again
after the neighbour's dog ruins the garden
as the match is fixed in plain sight
after an unfair parking fine
when a driver splashes the pavement
after the laptop crashes mid-essay
when the bully laughs in the corridor
after the repairman fails to show up
as the politician dodges the question
when the waiter ignores the table
after a sibling reads the diary
when the bank charges a hidden fee
after the team captain quits at half-time
as the noisy party continues past three""",
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
while watching someone chew loudly
on seeing maggots in the compost
after biting into a slug-covered lettuce leaf
when the dog rolls in something foul
on finding a used plaster in the pool
while unclogging a greasy sink
after smelling a sweaty gym bag
when a stranger picks {p} nose on the bus
at the sight of a rat in the pantry
while emptying a forgotten lunchbox
after stepping barefoot on a snail
when the milk comes out in lumps
at a table smeared with ketchup
after tasting sour, curdled cream
on finding fur in the butter
while changing a particularly messy nappy
when the fishmonger's stall reeks in the heat
at the smell of burnt hair
after sniffing a damp, mildewed towel
when a fly lands on the cake
while scraping gum from a shoe""",
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
while lost in the forest at night
as the elevator lurches and stops
on hearing a knock at three in the morning
when the brakes fail on the hill
as the river rises over the bank
on seeing a shadow move in the hallway
when the lights flicker in the basement
as a wasp circles {p} head
on the edge of a high cliff
as the doctor hesitates before speaking
when the car engine dies on a dark road
during the first parachute jump
as the masked figure steps closer
on finding the front door open
when the boat starts taking on water
as the wolves howl nearby
on stage before a huge audience
when the phone line goes dead
as the rollercoaster climbs its first drop
on hearing sirens close by
when the floorboards groan underfoot""",
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
as the critic praises a mediocre painting
as a rival boasts of a lucky promotion
after a flimsy excuse for lateness
when a show-off parks across two spaces
while hearing an empty campaign promise
during a lecture from a know-it-all
as an influencer poses for another selfie
after a clumsy attempt at flattery
when a tourist shouts at a waiter
while watching a reality show argument
after the manager takes credit again
as a snob sneers at the house wine
on seeing a plagiarised essay
when a colleague name-drops for the tenth time
while reading a smug social media post
after a rival's feeble comeback
as a cheater celebrates a hollow victory
during an awkward sales pitch
when a bully backs down
after an overpriced meal
as a boaster fails a simple task
while a pompous critic lectures the room
as a braggart exaggerates a fishing story
after a hypocrite preaches about honesty
while a coward blames the junior staff
as someone pushes to the front of the queue
when a rich guest complains about the free champagne
after a lazy teammate claims the victory
as a pundit repeats an obvious point
while a flatterer praises the boss
when a rival misquotes Shakespeare
as a show-off revs a sports car
after a fake apology on television
while a cheat explains the rules
as the tycoon tips a single coin
when the know-it-all gets the answer wrong""",
}


@lru_cache(maxsize=None)
def emotion_words(emotion: str) -> EmotionWords:
    """The word lists of ``emotion`` (one of ``schema.EMOTIONS``)."""
    if emotion not in _ADJ:
        raise InvalidInputError(f"unknown emotion {emotion!r} (accepted: {', '.join(EMOTIONS)})")
    return EmotionWords(emotion, _words(_ADJ[emotion]) + _words(_ADJ_INFORMAL[emotion]),
                        _words(_NOUN[emotion]) + _words(_NOUN_INFORMAL[emotion]), _clauses(_VERB[emotion]),
                        _clauses(_BODY[emotion]), _clauses(_CONTEXT[emotion]), IDIOMS[emotion], REACTIONS[emotion],
                        _words(_ADJ_INFORMAL[emotion]) + tuple(w for w in _words(_NOUN_INFORMAL[emotion])
                                                               if w not in _words(_ADJ_INFORMAL[emotion])))


# --- who and where: shared by every emotion -------------------------------------------------------
ROLES: Dict[str, Tuple[str, ...]] = {
    "child": _words("schoolchild youngster kindergartner second-grader scout pupil toddler preschooler "
                    "choir_singer piano_pupil brownie cub_scout little_footballer young_reader young_swimmer "
                    "ballet_pupil"),
    "teen": _words("teenager high-schooler student skateboarder drummer babysitter lifeguard gamer sprinter "
                   "trainee apprentice volunteer guitarist swimmer chess_player paperboy_trainee ballet_student "
                   "debater coder climber violinist runner goalkeeper cadet stable_hand"),
    "young": _words("nurse teacher librarian carpenter electrician plumber mechanic farmer baker chef barista "
                    "pilot surgeon dentist firefighter soldier sailor journalist photographer painter sculptor "
                    "violinist cellist pianist singer dancer actor architect engineer programmer scientist "
                    "chemist biologist astronomer geologist archaeologist lawyer accountant banker cashier "
                    "shopkeeper florist gardener butcher tailor jeweller locksmith welder courier paramedic "
                    "pharmacist veterinarian zookeeper ranger climber cyclist runner boxer footballer coach "
                    "referee reporter editor novelist poet comedian magician juggler acrobat receptionist "
                    "manager entrepreneur economist diplomat detective bartender beekeeper shepherd tutor "
                    "researcher designer mathematician translator interpreter astronaut midwife surveyor optician "
                    "radiographer physiotherapist hairdresser tattooist blacksmith glassblower potter weaver "
                    "upholsterer carpenter's_apprentice sound_engineer animator illustrator cartographer "
                    "meteorologist oceanographer botanist zoologist ecologist forester lumberjack miner "
                    "fisherman's_mate deckhand ferry_pilot train_driver tram_driver air_traffic_controller "
                    "flight_attendant lifeguard paralegal notary auctioneer estate_agent stockbroker actuary "
                    "statistician data_analyst web_developer game_designer copywriter podcaster filmmaker "
                    "choreographer puppeteer ventriloquist stuntperson mountaineer kayaker surfer snowboarder "
                    "fencer archer jockey gymnast"),
    "middle": _words("nurse teacher librarian carpenter electrician plumber mechanic farmer baker chef pilot "
                     "surgeon dentist firefighter sailor journalist photographer painter sculptor professor "
                     "lawyer judge accountant banker shopkeeper florist gardener butcher tailor jeweller "
                     "locksmith welder paramedic pharmacist veterinarian ranger coach referee editor novelist "
                     "poet playwright director magician manager executive entrepreneur economist politician "
                     "diplomat mayor detective bartender sommelier winemaker beekeeper rancher principal "
                     "headteacher historian conductor watchmaker bookseller optician surveyor radiographer "
                     "hairdresser blacksmith potter weaver upholsterer cartographer meteorologist botanist forester"
                     "miner deckhand train_driver auctioneer stockbroker actuary choreographer undertaker vicar "
                     "rabbi imam chaplain magistrate coroner curator archivist antiques_dealer greengrocer "
                     "fishmonger ironmonger publican innkeeper"),
    "old": _words("retiree pensioner veteran storyteller watchmaker gardener fisher professor grandparent "
                  "bookseller shepherd beekeeper widower historian philosopher organist clockmaker antiques_dealer "
                  "violin_maker stamp_collector birdwatcher allotment_keeper chess_champion former_sailor "
                  "retired_teacher retired_surgeon"),
}
LOOKS: Dict[str, Tuple[str, ...]] = {
    "any": _words("freckled dark-haired curly-haired red-haired blonde brown-eyed blue-eyed green-eyed "
                  "grey-eyed hazel-eyed pale tanned round-faced thin-faced bespectacled black-haired "
                  "olive-skinned dark-skinned fair-skinned rosy-cheeked sharp-featured slender lanky stocky "
                  "petite tall short-haired long-haired braided dreadlocked tattooed sunburned auburn-haired "
                  "wavy-haired crop-haired ginger-haired almond-eyed dark-eyed broad-shouldered square-jawed "
                  "high-cheekboned snub-nosed gap-toothed sharp-nosed hollow-cheeked pink-cheeked"),
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
wearing a chef's apron
in a leather motorcycle jacket
wearing a hooded sweatshirt
wearing a hard hat
in pyjamas
wearing a school uniform
in a tweed blazer
in a fluorescent safety vest
wearing a woolly bobble hat
in a paint-stained smock
wearing a silk headscarf
in a rumpled linen suit
wearing wellington boots
in a sequinned jacket
wearing a tartan kilt
in a threadbare cardigan
wearing a bow tie
in a wetsuit
wearing a laboratory coat
in a graduation gown
wearing a bicycle helmet
in a chunky knitted poncho
wearing fingerless gloves
in a pinstriped waistcoat
wearing a sun hat
in a football scarf
wearing dungarees""")
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
on bicycle path
in sculpture garden
in bike shed
in tram
in rowing boat
in sauna
in steam room
in pottery studio
in print shop
in flower shop
in butcher's shop
in toy shop
in record shop
in antique shop
in pawnshop
in arcade
in bowling alley
in cinema foyer
in concert hall
in opera house
in town hall
in council chamber
in polling station
in mosque
in temple
in synagogue
in hospice
in maternity ward
in operating theatre
in intensive care unit
in staffroom
in headteacher's office
in science lab
in computer lab
in music room
in art room
in sports hall
in dining hall
in common room
in student union
in bunkhouse
in treehouse
in igloo
in yurt
in log cabin
in ski lodge
in mountain hut
at village hall
at cattle market
at car boot sale
at farmers' market
at food truck
at ice-cream van
at bus shelter
at taxi rank
at toll booth
at border crossing
at customs desk
at baggage carousel
at departure lounge
at duty-free counter
at hotel pool
at beach bar
at rock pool
at tide line
at waterfall
at mountain pass
at summit cairn
at lookout point
on rope bridge
on canal towpath
on tow path bench
on hay bale
on tractor seat
on school bus
on night bus
on sleeper train
on cable car
on chairlift
on climbing wall
on trampoline
on bandstand
on podium
on catwalk
on film set
on lifeboat deck
on oil rig
on fishing trawler"""))
PLACE_ADJECTIVES = _words("""crowded dim quiet sunlit rain-soaked cluttered echoing narrow spacious chilly stuffy
smoky
deserted bustling noisy cramped draughty sun-dappled fluorescent-lit candlelit wood-panelled tiled carpeted marble
rundown elegant shabby tidy messy freezing humid windswept foggy misty snowy muddy dusty polished gleaming crumbling
modern old-fashioned rustic suburban seaside hillside riverside lakeside empty packed overheated airy gloomy bright
shadowy lamplit moonlit frosty sweltering breezy leafy overgrown renovated derelict cosy homely grand modest
ramshackle pristine chaotic orderly vast tiny colourful drab whitewashed half-lit neon-lit lantern-lit
sun-bleached rain-streaked wind-battered mossy ivy-covered smoke-filled fog-bound steamy echoless hushed thronged
overcrowded sparse bare-walled mirrored glass-walled brick-lined timber-framed thatched low-ceilinged
high-ceilinged book-lined paper-strewn flower-filled plant-filled sunny shady icy flooded storm-lashed dripping
muggy stifling cavernous poky makeshift temporary""")
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
after a sleepless night
on a blustery afternoon
at the stroke of noon
during the evening news
in the middle of a heatwave
on the last day of term
just after lunch
at half past six
on a damp November night
on Christmas morning
at the height of summer
during a lunar eclipse
moments before the deadline
on the morning of the match
after the last train has gone
during the annual fete""")
HELD = _words("holding carrying cradling clutching balancing gripping")
OBJECTS = _words("""a_chipped_mug a_folded_newspaper a_bouquet_of_tulips a_leather_briefcase a_smartphone a_paper_bag
a_paperback_novel a_wooden_spoon a_violin_case a_bicycle_helmet a_clipboard a_camera a_shopping_basket
a_steaming_kettle a_birthday_card a_handwritten_letter a_takeaway_coffee a_stack_of_files an_umbrella a_toolbox
a_teddy_bear a_football a_watering_can a_lantern a_suitcase a_map a_notebook a_set_of_keys a_plate_of_pasta
a_glass_of_wine a_lunchbox a_tennis_racket a_guitar a_rolled-up_poster a_cardboard_box a_cup_of_tea
a_parcel a_shovel a_fishing_rod a_textbook a_baby_bottle a_hammer a_paintbrush a_laptop a_wicker_basket
a_loaf_of_bread a_flashlight a_photograph_album a_microphone a_trophy a_passport a_ticket a_crossword
a_sandwich a_bunch_of_grapes a_jar_of_honey a_stethoscope a_rolling_pin a_candle a_skateboard a_sketchbook
a_thermos_flask a_bucket a_newspaper_clipping a_wrapped_present a_frying_pan a_receipt a_bag_of_oranges
a_sleeping_kitten a_rubber_duck a_pair_of_binoculars a_compass a_magnifying_glass a_harmonica a_tambourine a_kite
a_fishing_net a_basket_of_eggs a_jigsaw_puzzle a_pocket_watch a_pair_of_gloves a_cricket_bat a_hockey_stick
a_yoga_mat a_clarinet a_saxophone a_bowl_of_cherries a_tray_of_muffins a_crate_of_apples a_pile_of_laundry
a_sack_of_potatoes a_potted_cactus a_goldfish_bowl a_model_aeroplane a_snow_globe a_wooden_toy_train
a_vinyl_record a_typewriter a_chessboard a_globe a_pair_of_scissors a_tape_measure a_spirit_level a_screwdriver
a_mop a_broom a_dustpan a_feather_duster a_hot-water_bottle a_first-aid_kit a_fire_extinguisher a_megaphone
a_whistle a_traffic_cone a_road_map a_postcard a_library_book a_bus_pass a_bundle_of_letters a_pot_of_jam
a_wheel_of_cheese a_pineapple a_watermelon a_coconut a_tin_of_paint a_ladder a_wheelbarrow a_hosepipe a_bird_cage
a_lead_and_collar a_baby_monitor a_walking_stick a_shopping_trolley a_sleeping_bag a_rucksack a_pillow""")
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
