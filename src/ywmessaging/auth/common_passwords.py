"""A small list of common passwords of 10+ characters (shorter ones fail the length rule).

Drawn from public breach-frequency lists, plus the church-flavoured guesses an attacker of a
church office would try first. Compared after lower-casing.
"""

from __future__ import annotations

COMMON_PASSWORDS: frozenset[str] = frozenset({
    "1234567890", "0123456789", "0987654321", "9876543210", "1111111111", "0000000000",
    "1234512345", "1122334455", "12345678910", "123456789a", "123456789q", "12345qwert",
    "1q2w3e4r5t", "1q2w3e4r5t6y", "1qaz2wsx3edc", "qwertyuiop", "qwertyuiop1", "qwerty1234",
    "qwerty12345", "qwerty123456", "asdfghjkl1", "asdfghjkl;", "zxcvbnm123", "asdfasdfasdf",
    "password12", "password123", "password1234", "password12345", "password123!", "password!!",
    "passw0rd123", "p@ssword123", "p@ssw0rd123", "passwordpassword", "mypassword1",
    "mypassword123", "letmein123", "letmein1234", "welcome123", "welcome1234", "welcome2024",
    "welcome2025", "welcome2026", "changeme123", "changeme1234", "iloveyou123", "iloveyou12",
    "iloveyou1234", "princess123", "sunshine123", "football123", "baseball123", "basketball",
    "basketball1", "superman123", "batman12345", "starwars123", "pokemon123", "dragon1234",
    "monkey1234", "trustno1234", "administrator", "admin12345", "admin123456", "administrator1",
    "rootroot123", "abcdefghij", "abcdefghijk", "abc1234567", "abcd123456", "aaaaaaaaaa",
    "qazwsxedcrfv", "1qazxsw23edc", "michael123", "jennifer123", "charlie123", "computer123",
    "internet123", "whatever123", "freedom123", "shadow1234", "master1234", "hello12345",
    "helloworld", "helloworld1", "loveyou123", "summer2024", "summer2025", "winter2024",
    "winter2025", "spring2025", "autumn2025", "christmas1", "christmas123", "easter2025",
    "jesuschrist", "jesuschrist1", "jesusislord", "jesuslovesme", "jesuslovesyou", "jesussaves1",
    "jesus12345", "jesus123456", "godisgood1", "godisgood123", "godisgreat", "godislove1",
    "godbless123", "godblessyou", "blessed123", "blessed2024", "blessed2025", "hallelujah",
    "hallelujah1", "praisegod1", "praisethelord", "amazinggrace", "faithhopelove", "churchchurch",
    "church1234", "church12345", "mychurch123", "gracechurch", "firstbaptist", "baptist123",
    "methodist1", "lutheran123", "catholic123", "pastor1234", "pastor12345", "worship123",
    "worship1234", "prayer1234", "salvation1", "holyspirit", "holyspirit1", "trinity123",
    "emmanuel123", "immanuel123", "john316john", "john3:16john", "christian1", "christian123",
    "believe123", "heaven1234", "angel12345",
})
