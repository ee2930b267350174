-- Seed every church's default message templates (one or two per category).
-- New churches get them from the migrated template database; existing ones through `ywm migrate`.
-- is_default marks them as seeded: the API never lets a client set it, and a church may edit or
-- delete its copies freely. Bracketed words are placeholders the sender replaces before sending.
-- Bodies stay within one GSM-7 segment (160 characters) so a default never costs two.

INSERT INTO templates (name, body, category, is_default) VALUES
    ('Sunday service reminder',
     'Join us this Sunday at [time] for worship. We look forward to seeing you!',
     'service_reminder', true),
    ('Service time change',
     'Please note: this week''s service starts at [time]. See you there!',
     'service_reminder', true),
    ('Event invitation',
     'You''re invited! [event] on [date] at [time], [place]. We would love to see you there.',
     'event', true),
    ('Event reminder',
     'Reminder: [event] is tomorrow at [time]. See you there!',
     'event', true),
    ('Praying for you',
     'We are praying for you this week. Reply with a prayer request and our team will pray with you.',
     'prayer', true),
    ('Prayer meeting',
     'Join us for prayer on [day] at [time]. Everyone is welcome.',
     'prayer', true),
    ('Thank you for visiting',
     'Thank you for worshipping with us today! It was a joy to have you. We hope to see you again soon.',
     'thank_you', true),
    ('Thank you, volunteers',
     'Thank you for serving this week! Your help made a real difference.',
     'thank_you', true),
    ('Welcome',
     'Welcome to the family! We are so glad you are here. Reply any time if you have a question.',
     'welcome', true),
    ('Giving reminder',
     'Thank you for your generosity. You can give online at [link] or during the service.',
     'offering', true),
    ('Weather closure',
     'Due to the weather, [event] is cancelled today. Stay safe and we will see you soon.',
     'general', true);
