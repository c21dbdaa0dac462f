-- The route each call step took through the call flow, for the managers' journey map:
-- the ids of the nodes the step passed through, space-separated, in order, from the first
-- node it walked to (for a call's first step, the start node) to the node where it waited
-- for the caller or ended the call, and on past a stored enquiry to where the call went
-- next. NULL for a step that passed through no node (a hang-up in the queue, the goodbye
-- after an adviser, the apology) and for steps recorded before this migration.
ALTER TABLE call_steps ADD COLUMN path TEXT;
